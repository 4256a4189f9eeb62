#include "quantd/core/base/atomic_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "quantd/testing/status_matchers.h"

namespace quantd::core {
namespace {
namespace fs = std::filesystem;
using ::quantd::testing::StatusIs;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  int FilesInDir() const {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir_)) n += e.is_regular_file() ? 1 : 0;
    return n;
  }

  fs::path dir_;
};

TEST_F(AtomicFileTest, CommitReplacesTheFileAndLeavesNoTempFile) {
  const std::string path = Path("out.bin");
  std::ofstream(path) << "old";
  ASSERT_TRUE(WriteFileAtomically(path, std::string("new content")).ok());
  EXPECT_EQ(Read(path), "new content");
  EXPECT_EQ(FilesInDir(), 1);
}

TEST_F(AtomicFileTest, AnUncommittedWriterLeavesTheOldFile) {
  const std::string path = Path("out.bin");
  std::ofstream(path) << "old";
  {
    auto w = AtomicFileWriter::Create(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("half", 4).ok());
  }
  EXPECT_EQ(Read(path), "old");
  EXPECT_EQ(FilesInDir(), 1);
}

TEST_F(AtomicFileTest, LargeWritesAndPaddingKeepTheOffset) {
  const std::string path = Path("big.bin");
  auto w = AtomicFileWriter::Create(path);
  ASSERT_TRUE(w.ok());
  const std::string big(5 << 20, 'b');  // larger than the buffer
  ASSERT_TRUE((*w)->Write("abc", 3).ok());
  ASSERT_TRUE((*w)->Write(big.data(), big.size()).ok());
  ASSERT_TRUE((*w)->PadTo(32).ok());
  EXPECT_EQ((*w)->offset() % 32, 0u);
  const uint64_t size = (*w)->offset();
  ASSERT_TRUE((*w)->Commit().ok());
  const std::string got = Read(path);
  ASSERT_EQ(got.size(), size);
  EXPECT_EQ(got.substr(0, 3 + big.size()), "abc" + big);
  EXPECT_EQ(got.substr(3 + big.size()), std::string(size - 3 - big.size(), '\0'));
}

// Small (buffered) and large (direct) writes interleaved, with space
// reserved beyond what is written and write-back started along the way:
// the file holds exactly the bytes written, in order.
TEST_F(AtomicFileTest, ReservedSpaceAndMixedWritesKeepOrderAndSize) {
  const std::string path = Path("mixed.bin");
  auto w = AtomicFileWriter::Create(path);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Reserve(8 << 20).ok());
  (*w)->set_write_back_interval(100 << 10);
  std::string expected;
  for (int i = 0; i < 40; ++i) {
    const size_t n = i % 3 == 0 ? (70 << 10) + i : 1000 + i;  // >= 16 KiB goes direct
    const std::string piece(n, static_cast<char>('a' + i % 26));
    ASSERT_TRUE((*w)->Write(piece.data(), piece.size()).ok());
    expected += piece;
  }
  ASSERT_EQ((*w)->offset(), expected.size());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ(Read(path), expected);  // not the reserved 8 MiB
}

TEST_F(AtomicFileTest, ResumedWriterKeepsThePartAcrossWriters) {
  const std::string path = Path("download.bin");
  {
    auto w = AtomicFileWriter::OpenForResume(path);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ((*w)->offset(), 0u);
    EXPECT_EQ((*w)->temp_path(), path + ".part");
    ASSERT_TRUE((*w)->Write("0123", 4).ok());
  }  // interrupted: the part stays, unbuffered bytes are on disk
  EXPECT_EQ(Read(path + ".part"), "0123");
  EXPECT_FALSE(fs::exists(path));
  auto w = AtomicFileWriter::OpenForResume(path);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->offset(), 4u);
  ASSERT_TRUE((*w)->Write("4567", 4).ok());
  (*w)->StartWriteBack();
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ(Read(path), "01234567");
  EXPECT_FALSE(fs::exists(path + ".part"));
}

TEST_F(AtomicFileTest, ResumeStartsOverWhenThePartIsTooLongAndDiscardRemovesIt) {
  const std::string path = Path("download.bin");
  std::ofstream(path + ".part") << "far too many bytes";
  auto w = AtomicFileWriter::OpenForResume(path, /*max_keep=*/4);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->offset(), 0u);
  EXPECT_EQ(Read(path + ".part"), "");
  ASSERT_TRUE((*w)->Write("xy", 2).ok());
  (*w)->Discard();
  EXPECT_FALSE(fs::exists(path + ".part"));
  EXPECT_THAT((*w)->Commit(), StatusIs(absl::StatusCode::kFailedPrecondition, "discarded"));
}

TEST_F(AtomicFileTest, AMissingDirectoryIsNotFound) {
  EXPECT_THAT(WriteFileAtomically(Path("no/such/dir/x"), std::string("x")),
              StatusIs(absl::StatusCode::kNotFound, "cannot create"));
  EXPECT_THAT(AtomicFileWriter::OpenForResume(Path("no/such/dir/x")).status(),
              StatusIs(absl::StatusCode::kNotFound, "open"));
}

}  // namespace
}  // namespace quantd::core
