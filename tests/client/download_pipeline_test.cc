// DownloadPipeline writes and hashes every byte appended, in order, from
// any starting offset, and after a write error leaves a prefix to resume.
#include "download_pipeline.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "quantd/testing/test_dir.h"

namespace quantd::client::internal {
namespace {
namespace fs = std::filesystem;

class DownloadPipelineTest : public ::quantd::testing::TestDirTest {
 protected:
  // Bytes that differ at every position (so a misplaced piece shows).
  static std::string Pattern(size_t n, uint32_t seed) {
    std::string s(n, '\0');
    uint32_t x = seed;
    for (char& c : s) {
      x = x * 1664525u + 1013904223u;
      c = static_cast<char>(x >> 24);
    }
    return s;
  }
};

// Appends `data` in pieces of varying size (some larger than a buffer).
absl::Status AppendInPieces(DownloadPipeline* pipeline, const std::string& data) {
  size_t at = 0;
  for (size_t i = 0; at < data.size(); ++i) {
    const size_t n = std::min(data.size() - at, 1 + (i * 7919) % 20000);
    absl::Status st = pipeline->Append(absl::string_view(data).substr(at, n));
    if (!st.ok()) return st;
    at += n;
  }
  return absl::OkStatus();
}

// In a child process: limits the file size to 64 KiB, appends `data` to a
// pipeline writing `path`, and exits 0 when the write error is reported
// (in Append or at the latest in Finish, and then again in Finish).
void AppendPastAFileSizeLimit(const std::string& path, const std::string& data) {
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = {64 << 10, 64 << 10};
  setrlimit(RLIMIT_FSIZE, &limit);
  auto out = core::AtomicFileWriter::OpenForResume(path);
  if (!out.ok()) _exit(2);
  core::Sha256 sha;
  DownloadPipeline pipeline(out->get(), &sha, 8192);
  const absl::Status appended = AppendInPieces(&pipeline, data);
  const absl::Status finished = pipeline.Finish();
  _exit(!finished.ok() && (appended.ok() || appended == finished) ? 0 : 3);
}

TEST_F(DownloadPipelineTest, WritesAndHashesEveryByteInOrderAcrossTheRing) {
  // 8 KiB buffers, so the six-buffer ring wraps many times.
  const std::string data = Pattern(1'000'003, 1);
  const std::string path = Path("model.data");
  auto out = core::AtomicFileWriter::OpenForResume(path);
  ASSERT_TRUE(out.ok()) << out.status();
  core::Sha256 sha;
  {
    DownloadPipeline pipeline(out->get(), &sha, 8192);
    ASSERT_TRUE(AppendInPieces(&pipeline, data).ok());
    ASSERT_TRUE(pipeline.Finish().ok());
  }
  EXPECT_EQ((*out)->offset(), data.size());
  EXPECT_EQ(sha.FinishHex(), core::Sha256Hex(data));
  ASSERT_TRUE((*out)->Commit().ok());
  EXPECT_EQ(Read(path), data);
}

TEST_F(DownloadPipelineTest, ResumesAfterAnUnalignedPrefix) {
  // A part file left by an interrupted download (5000 bytes: not a
  // multiple of 4 KiB), then the rest through a pipeline; the caller's
  // hash covers the prefix first, as Client::DownloadTo does.
  const std::string data = Pattern(300'000, 2);
  const std::string path = Path("model.onnx");
  {
    std::ofstream part(path + ".part", std::ios::binary);
    part.write(data.data(), 5000);
  }
  auto out = core::AtomicFileWriter::OpenForResume(path);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ((*out)->offset(), 5000u);
  core::Sha256 sha;
  ASSERT_TRUE(core::HashFilePrefix((*out)->temp_path(), 5000, &sha).ok());
  {
    DownloadPipeline pipeline(out->get(), &sha, 16384);
    ASSERT_TRUE(AppendInPieces(&pipeline, data.substr(5000)).ok());
    // The destructor finishes.
  }
  EXPECT_EQ(sha.FinishHex(), core::Sha256Hex(data));
  ASSERT_TRUE((*out)->Commit().ok());
  EXPECT_EQ(Read(path), data);
}

TEST_F(DownloadPipelineTest, ASlowDownloadReachesTheFileAsItGoes) {
  // Bytes that trickle in are not held until their buffer is full: once a
  // buffer has held bytes for kMaxHold, the next Append hands it over, so a
  // process killed then leaves them in the part file to resume from.
  const std::string data = Pattern(10'000, 4);
  const std::string path = Path("slow");
  auto out = core::AtomicFileWriter::OpenForResume(path);
  ASSERT_TRUE(out.ok()) << out.status();
  core::Sha256 sha;
  DownloadPipeline pipeline(out->get(), &sha);
  ASSERT_TRUE(pipeline.Append(absl::string_view(data).substr(0, 3000)).ok());
  absl::SleepFor(DownloadPipeline::kMaxHold + absl::Milliseconds(50));
  ASSERT_TRUE(pipeline.Append(absl::string_view(data).substr(3000, 1000)).ok());
  std::string part;
  for (int i = 0; i < 200 && part.size() < 4000; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    part = Read(path + ".part");
  }
  EXPECT_EQ(part, data.substr(0, 4000));
  // The rest continues in a buffer that ends at the next multiple of the
  // buffer size.
  ASSERT_TRUE(pipeline.Append(absl::string_view(data).substr(4000)).ok());
  ASSERT_TRUE(pipeline.Finish().ok());
  EXPECT_EQ(sha.FinishHex(), core::Sha256Hex(data));
  ASSERT_TRUE((*out)->Commit().ok());
  EXPECT_EQ(Read(path), data);
}

TEST_F(DownloadPipelineTest, NothingAppendedWritesNothing) {
  const std::string path = Path("empty");
  auto out = core::AtomicFileWriter::OpenForResume(path);
  ASSERT_TRUE(out.ok()) << out.status();
  core::Sha256 sha;
  {
    DownloadPipeline pipeline(out->get(), &sha);
    EXPECT_TRUE(pipeline.Finish().ok());
    EXPECT_TRUE(pipeline.Finish().ok());  // again: the same answer
  }
  EXPECT_EQ(sha.FinishHex(), core::Sha256Hex(""));
  ASSERT_TRUE((*out)->Commit().ok());
  EXPECT_EQ(Read(path), "");
}

TEST_F(DownloadPipelineTest, AWriteErrorStopsItAndLeavesAPrefixToResumeFrom) {
  // A file-size limit makes the disk refuse the bytes past 64 KiB (EFBIG);
  // in a child process, as the limit is the process's.
  const std::string data = Pattern(1 << 20, 3);
  const std::string path = Path("big");
  EXPECT_EXIT(AppendPastAFileSizeLimit(path, data), ::testing::ExitedWithCode(0), "");
  const std::string part = Read(path + ".part");
  EXPECT_LE(part.size(), 64u << 10);
  EXPECT_GT(part.size(), 0u);
  EXPECT_EQ(part, data.substr(0, part.size()));
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace quantd::client::internal
