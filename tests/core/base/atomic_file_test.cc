#include "quantd/core/base/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "quantd/core/base/output_digests.h"
#include "quantd/core/base/sha256.h"
#include "quantd/testing/status_matchers.h"
#include "quantd/testing/test_dir.h"

namespace quantd::core {
namespace {
namespace fs = std::filesystem;
using ::quantd::testing::StatusIs;

class AtomicFileTest : public ::quantd::testing::TestDirTest {
 protected:
  int FilesInDir() const {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir_)) n += e.is_regular_file() ? 1 : 0;
    return n;
  }

  // The digest `digests` holds for `path` is that of the committed file,
  // which holds `expected`.
  static void ExpectDigestOf(const OutputDigests& digests, const std::string& path,
                             const std::string& expected) {
    const std::optional<OutputDigests::Digest> d = digests.Find(fs::path(path).filename().string());
    ASSERT_TRUE(d.has_value()) << path;
    EXPECT_EQ(d->size, expected.size());
    EXPECT_EQ(d->sha256, Sha256Hex(expected));
    auto on_disk = Sha256File(path);
    ASSERT_TRUE(on_disk.ok()) << on_disk.status();
    EXPECT_EQ(d->sha256, *on_disk);
  }
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

// Whether the file system under `dir` accepts an O_DIRECT write of one
// aligned 4 KiB block (tmpfs and some others refuse it).
bool DirectWritesWork(const std::string& dir) {
  const std::string probe = dir + "/probe";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  void* block = std::aligned_alloc(4096, 4096);
  std::memset(block, 0, 4096);
  const bool ok = ::pwrite(fd, block, 4096, 0) == 4096;
  std::free(block);
  ::close(fd);
  std::filesystem::remove(probe);
  return ok;
}

// WriteUncached interleaved with Write and PadTo: aligned block runs from
// aligned memory at aligned offsets bypass the page cache (more than one
// O_DIRECT chunk for the long one), everything else (a tail that is not a
// whole block, an unaligned offset or pointer) goes through the ordinary
// path; the file holds exactly the bytes in order, with the reservation
// given back.
TEST_F(AtomicFileTest, UncachedWritesMixWithBufferedOnesInOrder) {
  const bool direct = DirectWritesWork(dir_.string());
  const std::string path = Path("uncached.bin");
  OutputDigests digests;  // hashed while written, across every kind of write
  auto w = AtomicFileWriter::Create(path, &digests);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Reserve(64 << 20).ok());
  (*w)->set_write_back_interval(1 << 20);
  const size_t big = (17 << 20) + 100;  // 17 MiB of whole blocks and a 100-byte tail
  std::unique_ptr<uint8_t, decltype(&std::free)> memory(
      static_cast<uint8_t*>(std::aligned_alloc(4096, big + 4096)), &std::free);
  for (size_t i = 0; i < big + 4096; ++i) memory.get()[i] = static_cast<uint8_t>(i * 31 + i / 4093);
  const uint8_t* aligned = memory.get();
  std::string expected;
  auto append = [&](const uint8_t* p, size_t n) {
    expected.append(reinterpret_cast<const char*>(p), n);
  };
  auto pad = [&] {
    ASSERT_TRUE((*w)->PadTo(4096).ok());
    expected.resize((*w)->offset(), '\0');
  };

  ASSERT_TRUE((*w)->Write("abc", 3).ok());
  expected += "abc";
  pad();
  ASSERT_TRUE((*w)->WriteUncached({aligned, big}).ok());  // blocks direct, tail buffered
  append(aligned, big);
  EXPECT_EQ((*w)->uncached_bytes(), direct ? uint64_t{17} << 20 : 0);
  const uint64_t after_big = (*w)->uncached_bytes();
  ASSERT_TRUE((*w)->WriteUncached({aligned, 8192}).ok());  // offset not aligned: buffered
  append(aligned, 8192);
  pad();
  ASSERT_TRUE((*w)->WriteUncached({aligned + 1, 8192}).ok());  // memory not aligned: buffered
  append(aligned + 1, 8192);
  EXPECT_EQ((*w)->uncached_bytes(), after_big);
  pad();
  ASSERT_TRUE((*w)->Write("x", 1).ok());  // a buffered byte that must land before the next span
  expected += "x";
  pad();
  ASSERT_TRUE((*w)->WriteUncached({aligned + 4096, 3 * 4096}).ok());
  append(aligned + 4096, 3 * 4096);
  EXPECT_EQ((*w)->uncached_bytes(), after_big + (direct ? 3 * 4096 : 0));
  pad();
  ASSERT_TRUE((*w)->WriteUncached({aligned + 4095, big}).ok());  // long, but not aligned
  append(aligned + 4095, big);
  EXPECT_EQ((*w)->uncached_bytes(), after_big + (direct ? 3 * 4096 : 0));
  ASSERT_TRUE((*w)->Write("end", 3).ok());
  expected += "end";
  ASSERT_EQ((*w)->offset(), expected.size());
  ASSERT_TRUE((*w)->Commit().ok());
  const std::string got = Read(path);
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected);
  EXPECT_EQ(FilesInDir(), 1);
  ExpectDigestOf(digests, path, expected);
}

// WriteUncachedAsync: within reserved space, aligned runs from memory that
// stays unchanged are queued (the temp file takes the reserved size at
// once, which only the queued path does) and land in order with buffered
// and synchronous writes around them; Commit waits for them and cuts the
// file to the bytes written. Without a reservation it writes synchronously
// (the file never grows past what was written); Discard with writes queued
// leaves nothing.
TEST_F(AtomicFileTest, QueuedUncachedWritesLandInOrderAndCommitWaitsForThem) {
  const bool direct = DirectWritesWork(dir_.string());
  const size_t big = (40 << 20) + 300;  // three queued chunks and a tail
  std::unique_ptr<uint8_t, decltype(&std::free)> memory(
      static_cast<uint8_t*>(std::aligned_alloc(4096, big)), &std::free);
  for (size_t i = 0; i < big; ++i) memory.get()[i] = static_cast<uint8_t>(i * 7 + i / 4099);
  const uint8_t* aligned = memory.get();
  const uint64_t reserve = 96 << 20;
  for (bool reserved : {true, false}) {
    SCOPED_TRACE(reserved ? "reserved" : "not reserved");
    const std::string path = Path(reserved ? "queued.bin" : "unreserved.bin");
    OutputDigests digests;  // queued spans are hashed from memory, in file order
    auto w = AtomicFileWriter::Create(path, &digests);
    ASSERT_TRUE(w.ok());
    if (reserved) {
      ASSERT_TRUE((*w)->Reserve(reserve).ok());
    }
    std::string expected;
    ASSERT_TRUE((*w)->Write("head", 4).ok());
    expected += "head";
    ASSERT_TRUE((*w)->PadTo(4096).ok());
    expected.resize((*w)->offset(), '\0');
    ASSERT_TRUE((*w)->WriteUncachedAsync({aligned, big}).ok());
    expected.append(reinterpret_cast<const char*>(aligned), big);
    ASSERT_TRUE((*w)->PadTo(4096).ok());
    expected.resize((*w)->offset(), '\0');
    ASSERT_TRUE((*w)->WriteUncachedAsync({aligned + 8192, 5 << 20}).ok());
    expected.append(reinterpret_cast<const char*>(aligned + 8192), 5 << 20);
    ASSERT_TRUE((*w)->Write("tail", 4).ok());
    expected += "tail";
    const uint64_t temp_size = fs::file_size((*w)->temp_path());
    if (reserved && direct) {
      EXPECT_EQ(temp_size, reserve);  // queued: the file has its reserved size
    } else {
      EXPECT_LE(temp_size, expected.size());
    }
    EXPECT_EQ((*w)->uncached_bytes(), direct ? uint64_t{45} << 20 : 0);
    ASSERT_TRUE((*w)->Commit().ok());
    const std::string got = Read(path);
    ASSERT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected);
    ExpectDigestOf(digests, path, expected);
  }
  {
    auto w = AtomicFileWriter::Create(Path("discarded.bin"));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Reserve(reserve).ok());
    ASSERT_TRUE((*w)->WriteUncachedAsync({aligned, big}).ok());
    (*w)->Discard();
  }
  EXPECT_FALSE(fs::exists(Path("discarded.bin")));
  EXPECT_EQ(FilesInDir(), 2);
}

// Staged writing: writes of every size, at aligned and unaligned offsets,
// mixed with queued uncached writes, padding and a patch, land in order;
// whole blocks go to the disk from the stages (queued inside the reserved
// space, synchronous beyond it) and the digest is the file's. More than four
// stages' worth, so the ring waits for its own writes.
TEST_F(AtomicFileTest, StagedWritesLandInOrderFromTheRingOfStages) {
  const bool direct = DirectWritesWork(dir_.string());
  const size_t big = (9 << 20) + 4096;
  std::unique_ptr<uint8_t, decltype(&std::free)> memory(
      static_cast<uint8_t*>(std::aligned_alloc(4096, big)), &std::free);
  for (size_t i = 0; i < big; ++i) memory.get()[i] = static_cast<uint8_t>(i * 13 + i / 4093);
  const uint8_t* aligned = memory.get();
  for (uint64_t reserve : {uint64_t{0}, uint64_t{12} << 20, uint64_t{80} << 20}) {
    SCOPED_TRACE(::testing::Message() << "reserved " << reserve);
    const std::string path = Path("staged-" + std::to_string(reserve) + ".bin");
    OutputDigests digests;
    auto w = AtomicFileWriter::Create(path, &digests);
    ASSERT_TRUE(w.ok());
    if (reserve > 0) {
      ASSERT_TRUE((*w)->Reserve(reserve).ok());
    }
    ASSERT_TRUE((*w)->SetStaged(true).ok());
    std::string expected;
    auto write = [&](const uint8_t* p, size_t n) {
      ASSERT_TRUE((*w)->Write(p, n).ok());
      expected.append(reinterpret_cast<const char*>(p), n);
    };
    write(aligned + 5, 3);  // a partial first block
    size_t at = 0;
    for (size_t n : {size_t{1}, size_t{4095}, size_t{4096}, size_t{70000}, size_t{5} << 20,
                     size_t{17}, size_t{6} << 20, size_t{3} << 20}) {
      write(aligned + at % 4096, n);  // memory and file offsets disagree modulo 4 KiB
      at += n + 1;
    }
    ASSERT_TRUE((*w)->PadTo(4096).ok());
    expected.resize((*w)->offset(), '\0');
    ASSERT_TRUE((*w)->WriteUncachedAsync({aligned, big}).ok());  // closes the open stage
    expected.append(reinterpret_cast<const char*>(aligned), big);
    write(aligned + 100, (4 << 20) + 9);  // staged again, from an aligned offset
    ASSERT_TRUE((*w)->SetStaged(false).ok());
    write(aligned + 7, 20);  // through the buffer again
    if (direct) {
      EXPECT_GT((*w)->uncached_bytes(), uint64_t{25} << 20);
    } else {
      EXPECT_EQ((*w)->uncached_bytes(), 0u);
    }
    ASSERT_TRUE((*w)->Commit().ok());
    const std::string got = Read(path);
    ASSERT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected);
    ExpectDigestOf(digests, path, expected);
  }
  // A patch and a discard with stages in flight.
  {
    auto w = AtomicFileWriter::Create(Path("patched-staged.bin"));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Reserve(32 << 20).ok());
    ASSERT_TRUE((*w)->SetStaged(true).ok());
    ASSERT_TRUE((*w)->Write(aligned, 9 << 20).ok());
    ASSERT_TRUE(
        (*w)->WriteAt(1, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>("XY"), 2))
            .ok());
    ASSERT_TRUE((*w)->Commit().ok());
    std::string want(reinterpret_cast<const char*>(aligned), 9 << 20);
    want[1] = 'X';
    want[2] = 'Y';
    EXPECT_TRUE(Read(Path("patched-staged.bin")) == want);
    auto d = AtomicFileWriter::Create(Path("discarded-staged.bin"));
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE((*d)->Reserve(32 << 20).ok());
    ASSERT_TRUE((*d)->SetStaged(true).ok());
    ASSERT_TRUE((*d)->Write(aligned, 9 << 20).ok());
    (*d)->Discard();
    EXPECT_FALSE(fs::exists(Path("discarded-staged.bin")));
  }
}

// A write that does not continue the hashed bytes (WriteAt patching a
// header) leaves the digest unknown, and the record replaces the digest an
// earlier file at that path had, so a stale digest is never found.
TEST_F(AtomicFileTest, AnOutOfOrderWriteLeavesTheDigestUnknown) {
  const std::string path = Path("patched.bin");
  OutputDigests digests;
  ASSERT_TRUE(WriteFileAtomically(path, std::string("hello world"), &digests).ok());
  ExpectDigestOf(digests, path, "hello world");

  auto w = AtomicFileWriter::Create(path, &digests);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("hello world", 11).ok());
  EXPECT_THAT(
      (*w)->WriteAt(8, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>("xyzw"), 4)),
      StatusIs(absl::StatusCode::kOutOfRange, "beyond the 11 bytes"));  // past the end
  ASSERT_TRUE(
      (*w)->WriteAt(0, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>("J"), 1)).ok());
  ASSERT_TRUE((*w)->Write("!", 1).ok());
  EXPECT_EQ((*w)->offset(), 12u);
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ(Read(path), "Jello world!");
  EXPECT_FALSE(digests.Find("patched.bin").has_value());
}

// WriteFileAtomically and CopyFileAtomically hash when asked; a name
// committed in two folders is ambiguous; a writer without digests records
// nothing.
TEST_F(AtomicFileTest, WholeFileHelpersRecordDigestsByName) {
  OutputDigests digests;
  const std::string text(100000, 'q');
  ASSERT_TRUE(WriteFileAtomically(Path("a.json"), text, &digests).ok());
  ASSERT_TRUE(CopyFileAtomically(Path("a.json"), Path("b.json"), &digests).ok());
  ExpectDigestOf(digests, Path("a.json"), text);
  ExpectDigestOf(digests, Path("b.json"), text);
  ASSERT_TRUE(WriteFileAtomically(Path("c.json"), std::string("x")).ok());
  EXPECT_FALSE(digests.Find("c.json").has_value());
  fs::create_directories(dir_ / "sub");
  ASSERT_TRUE(WriteFileAtomically((dir_ / "sub" / "a.json").string(), text, &digests).ok());
  EXPECT_FALSE(digests.Find("a.json").has_value());  // two folders hold an a.json
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
