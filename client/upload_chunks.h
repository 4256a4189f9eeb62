// Upload chunk messages without copies, and the read-ahead that fills them.
//
// ChunkPrefix encodes the bytes of a quantd.v1.UploadRequest { chunk {
// offset, data } } that come before `data`, so a chunk goes to gRPC as a
// grpc::ByteBuffer of two slices: the prefix and the file bytes themselves,
// referenced (not copied) from a ReadBlock.
//
// ReadAhead reads the files of an upload front to back on its own thread,
// in blocks taken from a small pool, hashing each block (when asked) before
// handing it to the caller, who sends it while the next block is read and
// hashed. A block goes back to the pool when the caller and every slice
// gRPC still holds have let go of it.
//
// Thread safety: ReadAhead's methods are for one consumer thread; the
// slices it makes may be released on any thread. Not part of the API.
#ifndef QUANTD_CLIENT_UPLOAD_CHUNKS_H_
#define QUANTD_CLIENT_UPLOAD_CHUNKS_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/message_lite.h"
#include "quantd/core/base/sha256.h"

namespace quantd::client::internal {

// The serialized UploadRequest bytes before a chunk's `n` data bytes.
std::string ChunkPrefix(uint64_t offset, size_t n);

// `message` serialized into a one-slice grpc::ByteBuffer (a copy: for the
// small header and finish messages).
grpc::ByteBuffer MessageBuffer(const google::protobuf::MessageLite& message);

class BlockPool;

// A block of file bytes, counted by references (the reader, the sender,
// each slice gRPC holds).
struct ReadBlock {
  BlockPool* pool = nullptr;
  std::unique_ptr<char[]> data;
  size_t capacity = 0;
  std::atomic<int> refs{0};
  // What the block holds: bytes [file_pos, file_pos + size) of file `file`,
  // at `offset` counted over all files.
  int file = 0;
  uint64_t file_pos = 0;
  uint64_t offset = 0;
  size_t size = 0;
};

// The blocks of one upload. Shared (std::shared_ptr) by the ReadAhead and
// every slice made from its blocks, so it outlives a slice gRPC frees late.
class BlockPool {
 public:
  BlockPool(size_t block_bytes, int max_blocks)
      : block_bytes_(block_bytes), max_blocks_(max_blocks) {}
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // A free block with one reference, or nullptr once Close() was called.
  // Waits while all max_blocks blocks are in use.
  ReadBlock* Acquire();
  void Ref(ReadBlock* block) { block->refs.fetch_add(1, std::memory_order_relaxed); }
  // Drops a reference; the last one returns the block to the pool.
  void Unref(ReadBlock* block);
  // Wakes and fails every Acquire, now and later.
  void Close();

 private:
  const size_t block_bytes_;
  const int max_blocks_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<ReadBlock>> blocks_ ABSL_GUARDED_BY(mu_);
  std::vector<ReadBlock*> free_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// gRPC keeps the messages of a call until the call commits (its retry
// buffer, 256 KiB by default: the call commits when that is exceeded or the
// server answers), so a message that references a block can pin it while
// the server is not done. Only chunks of at least kMinReferencedChunk bytes
// reference their block; smaller ones (the tails of files, small files) are
// copied. Then at most 256 KiB / kMinReferencedChunk + 1 blocks are pinned
// that way, fewer than kReadAheadBlocks, so the reader always gets a block.
inline constexpr size_t kMinReferencedChunk = 64 << 10;
inline constexpr int kReadAheadBlocks = 8;

// A grpc::ByteBuffer holding UploadRequest{chunk{offset, data}} whose data
// is bytes [begin, begin + n) of `block`, referenced (the block gets one
// more reference, dropped when gRPC frees the slice). `pool` owns `block`.
grpc::ByteBuffer ChunkMessage(const std::shared_ptr<BlockPool>& pool, ReadBlock* block,
                              size_t begin, size_t n);

// The same message with the `n` bytes at `data` copied into it.
grpc::ByteBuffer CopiedChunkMessage(uint64_t offset, const char* data, size_t n);

class ReadAhead {
 public:
  struct File {
    int fd = -1;
    std::string path;
    uint64_t size = 0;
  };
  // Reads `files` (not owned; fds stay open until this is destroyed) from
  // `offset` (counted over all files) to their end. `shas` (one per file,
  // not owned) get the bytes read, or is empty for no hashing.
  ReadAhead(std::vector<File> files, uint64_t offset, std::vector<core::Sha256*> shas,
            size_t block_bytes, int max_blocks);
  // Stops and joins the reader thread.
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // The next block (hashed), with one reference for the caller to Unref
  // through pool(); nullptr at the end or after an error (status()).
  ReadBlock* Next();
  // The first read error (a local file error), OK otherwise.
  absl::Status status();
  const std::shared_ptr<BlockPool>& pool() const { return pool_; }

 private:
  void Run();

  const std::vector<File> files_;
  const uint64_t start_;
  const std::vector<core::Sha256*> shas_;
  const std::shared_ptr<BlockPool> pool_;
  absl::Mutex mu_;
  std::deque<ReadBlock*> ready_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // the reader has stopped
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace quantd::client::internal

#endif  // QUANTD_CLIENT_UPLOAD_CHUNKS_H_
