// The upload's raw chunk messages parse as the UploadRequest the server
// expects, and the read-ahead hands over every byte once, in order, hashed.
#include "upload_chunks.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "gtest/gtest.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::client::internal {
namespace {

namespace fs = std::filesystem;

// The message's bytes (all its slices, in order) parsed as an UploadRequest.
v1::UploadRequest Parse(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  v1::UploadRequest request;
  EXPECT_TRUE(request.ParseFromString(bytes));
  return request;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(UploadChunksTest, PrefixEncodesTheSameBytesAsProtobuf) {
  for (uint64_t offset : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128},
                          uint64_t{1} << 40, ~uint64_t{0}}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{127}, size_t{128}, size_t{300000}}) {
      const std::string data = RandomBytes(n, static_cast<uint32_t>(offset + n));
      v1::UploadRequest expected;
      expected.mutable_chunk()->set_offset(offset);
      expected.mutable_chunk()->set_data(data);
      EXPECT_EQ(ChunkPrefix(offset, n) + data, expected.SerializeAsString())
          << "offset " << offset << ", " << n << " bytes";
    }
  }
}

TEST(UploadChunksTest, ChunkMessageReferencesTheBlockUntilGrpcLetsGo) {
  auto pool = std::make_shared<BlockPool>(1024, /*max_blocks=*/1);
  ReadBlock* block = pool->Acquire();
  ASSERT_NE(block, nullptr);
  const std::string bytes = RandomBytes(1024, 7);
  std::copy(bytes.begin(), bytes.end(), block->data.get());
  block->offset = 5000;
  block->size = 1024;
  {
    grpc::ByteBuffer message = ChunkMessage(pool, block, 100, 600);
    v1::UploadRequest request = Parse(message);
    ASSERT_TRUE(request.has_chunk());
    EXPECT_EQ(request.chunk().offset(), 5100u);
    EXPECT_EQ(request.chunk().data(), bytes.substr(100, 600));
    pool->Unref(block);  // the sender's reference; the slice still holds one
    EXPECT_EQ(block->refs.load(), 1);
  }
  // The message is gone: the block is free again (the only one there is).
  EXPECT_EQ(pool->Acquire(), block);
}

TEST(UploadChunksTest, CopiedChunkMessageIsTheSameMessage) {
  const std::string bytes = RandomBytes(1000, 11);
  v1::UploadRequest request = Parse(CopiedChunkMessage(77, bytes.data(), bytes.size()));
  EXPECT_EQ(request.chunk().offset(), 77u);
  EXPECT_EQ(request.chunk().data(), bytes);
}

TEST(UploadChunksTest, SlicesOutliveTheirPool) {
  grpc::ByteBuffer message;
  const std::string bytes = RandomBytes(64, 9);
  {
    auto pool = std::make_shared<BlockPool>(64, 2);
    ReadBlock* block = pool->Acquire();
    std::copy(bytes.begin(), bytes.end(), block->data.get());
    block->size = 64;
    message = ChunkMessage(pool, block, 0, 64);
    pool->Unref(block);
  }
  // The pool's last owner is the slice: the bytes are still there.
  EXPECT_EQ(Parse(message).chunk().data(), bytes);
}

class ReadAheadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("quantd-read-ahead-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    for (auto& f : files_) ::close(f.fd);
    fs::remove_all(dir_);
  }
  void AddFile(const std::string& bytes) {
    const std::string path = dir_ / ("f" + std::to_string(files_.size()));
    std::ofstream(path, std::ios::binary) << bytes;
    files_.push_back({::open(path.c_str(), O_RDONLY | O_CLOEXEC), path, bytes.size()});
    contents_.push_back(bytes);
  }
  fs::path dir_;
  std::vector<ReadAhead::File> files_;
  std::vector<std::string> contents_;
};

TEST_F(ReadAheadTest, EveryByteOnceInOrderHashedPerFile) {
  AddFile(RandomBytes(10000, 1));
  AddFile(RandomBytes(0, 2));
  AddFile(RandomBytes(4096 * 3 + 5, 3));
  for (uint64_t start : {uint64_t{0}, uint64_t{4095}, uint64_t{10000}, uint64_t{10001}}) {
    core::Sha256 sha[3];
    std::string got[3];
    {
      ReadAhead reader(files_, start, {&sha[0], &sha[1], &sha[2]}, 4096, /*max_blocks=*/2);
      uint64_t offset = start;
      while (ReadBlock* block = reader.Next()) {
        EXPECT_EQ(block->offset, offset);
        got[block->file].append(block->data.get(), block->size);
        offset += block->size;
        reader.pool()->Unref(block);
      }
      EXPECT_TRUE(reader.status().ok()) << reader.status();
      EXPECT_EQ(offset, 10000u + 4096 * 3 + 5);
    }
    uint64_t base = 0;
    for (int i = 0; i < 3; ++i) {
      const uint64_t skip = start > base ? std::min<uint64_t>(start - base, contents_[i].size()) : 0;
      EXPECT_EQ(got[i], contents_[i].substr(skip)) << "file " << i << " from " << start;
      base += contents_[i].size();
    }
    if (start == 0) {
      for (int i = 0; i < 3; ++i) EXPECT_EQ(sha[i].FinishHex(), core::Sha256Hex(contents_[i]));
    }
  }
}

TEST_F(ReadAheadTest, AFileThatShrankIsALocalError) {
  AddFile(RandomBytes(8192, 4));
  files_[0].size = 20000;  // declared longer than it is
  ReadAhead reader(files_, 0, {}, 4096, 2);
  uint64_t got = 0;
  while (ReadBlock* block = reader.Next()) {
    got += block->size;
    reader.pool()->Unref(block);
  }
  EXPECT_EQ(got, 8192u);
  EXPECT_TRUE(absl::IsDataLoss(reader.status())) << reader.status();
}

TEST_F(ReadAheadTest, StopsWhenDroppedEarly) {
  AddFile(RandomBytes(64 << 10, 5));
  ReadAhead reader(files_, 0, {}, 4096, 2);
  ReadBlock* block = reader.Next();
  ASSERT_NE(block, nullptr);
  reader.pool()->Unref(block);
  // The destructor closes the pool and joins the reader, which waits for a
  // block while the caller holds none.
}

}  // namespace
}  // namespace quantd::client::internal
