// ChunkPrefix, BlockPool, ChunkMessage and ReadAhead (upload_chunks.h).
#include "upload_chunks.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "client_internal.h"
#include "quantd/api/wire.h"

namespace quantd::client::internal {
namespace {

using api::wire::ChunkFieldsSize;
using api::wire::kLengthDelimited;
using api::wire::PutChunkFields;
using api::wire::PutKey;
using api::wire::PutVarint;

constexpr int kUploadRequestChunk = 2;  // UploadRequest.chunk
constexpr int kChunkOffset = 1;         // UploadChunk.offset
constexpr int kChunkData = 2;           // UploadChunk.data

// What a slice of a block carries to its destroy callback.
struct SliceRef {
  std::shared_ptr<BlockPool> pool;
  ReadBlock* block;
};

void ReleaseSlice(void* p) {
  auto* ref = static_cast<SliceRef*>(p);
  ref->pool->Unref(ref->block);
  delete ref;
}

}  // namespace

std::string ChunkPrefix(uint64_t offset, size_t n) {
  // UploadRequest { chunk { offset, data } }, byte for byte as protobuf
  // writes it.
  std::string out;
  out.reserve(24);
  PutKey(kUploadRequestChunk, kLengthDelimited, &out);
  PutVarint(ChunkFieldsSize(kChunkOffset, kChunkData, offset, n), &out);
  PutChunkFields(kChunkOffset, kChunkData, offset, n, &out);
  return out;
}

grpc::ByteBuffer MessageBuffer(const google::protobuf::MessageLite& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

ReadBlock* BlockPool::Acquire() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](BlockPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
        return p->closed_ || !p->free_.empty() ||
               static_cast<int>(p->blocks_.size()) < p->max_blocks_;
      },
      this));
  if (closed_) return nullptr;
  ReadBlock* block;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else {
    auto b = std::make_unique<ReadBlock>();
    b->pool = this;
    b->data.reset(new char[block_bytes_]);  // filled by pread before any use
    b->capacity = block_bytes_;
    block = b.get();
    blocks_.push_back(std::move(b));
  }
  block->refs.store(1, std::memory_order_relaxed);
  return block;
}

void BlockPool::Unref(ReadBlock* block) {
  if (block->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  absl::MutexLock lock(&mu_);
  free_.push_back(block);
}

void BlockPool::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

grpc::ByteBuffer ChunkMessage(const std::shared_ptr<BlockPool>& pool, ReadBlock* block,
                              size_t begin, size_t n) {
  const std::string prefix = ChunkPrefix(block->offset + begin, n);
  pool->Ref(block);
  grpc_slice data = grpc_slice_new_with_user_data(block->data.get() + begin, n, &ReleaseSlice,
                                                  new SliceRef{pool, block});
  grpc::Slice slices[2] = {grpc::Slice(prefix), grpc::Slice(data, grpc::Slice::STEAL_REF)};
  return grpc::ByteBuffer(slices, 2);
}

grpc::ByteBuffer CopiedChunkMessage(uint64_t offset, const char* data, size_t n) {
  std::string bytes = ChunkPrefix(offset, n);
  bytes.append(data, n);
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

ReadAhead::ReadAhead(std::vector<File> files, uint64_t offset, std::vector<core::Sha256*> shas,
                     size_t block_bytes, int max_blocks)
    : files_(std::move(files)),
      start_(offset),
      shas_(std::move(shas)),
      pool_(std::make_shared<BlockPool>(block_bytes, max_blocks)) {
  thread_ = std::thread([this] { Run(); });
}

ReadAhead::~ReadAhead() {
  pool_->Close();  // wakes the reader if it waits for a block
  thread_.join();
  absl::MutexLock lock(&mu_);
  for (ReadBlock* b : ready_) pool_->Unref(b);
  ready_.clear();
}

void ReadAhead::Run() {
  absl::Status st;
  uint64_t base = 0;
  for (size_t i = 0; st.ok() && i < files_.size(); ++i) {
    const File& f = files_[i];
    uint64_t pos = start_ > base ? std::min(start_ - base, f.size) : 0;
    while (st.ok() && pos < f.size) {
      ReadBlock* block = pool_->Acquire();
      if (block == nullptr) {  // stopped
        st = absl::CancelledError("the upload stopped");
        break;
      }
      const size_t n = static_cast<size_t>(std::min<uint64_t>(block->capacity, f.size - pos));
      size_t got = 0;
      while (got < n) {
        ssize_t r = ::pread(f.fd, block->data.get() + got, n - got, static_cast<off_t>(pos + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          st = r < 0 ? LocalErrnoError(errno, "read", f.path)
                     : LocalFileError(
                           absl::DataLossError(absl::StrCat(f.path, " shrank during upload")));
          break;
        }
        got += static_cast<size_t>(r);
      }
      if (!st.ok()) {
        pool_->Unref(block);
        break;
      }
      if (!shas_.empty()) shas_[i]->Update(block->data.get(), n);
      block->file = static_cast<int>(i);
      block->file_pos = pos;
      block->offset = base + pos;
      block->size = n;
      pos += n;
      absl::MutexLock lock(&mu_);
      ready_.push_back(block);
    }
    base += f.size;
  }
  absl::MutexLock lock(&mu_);
  status_ = st;
  done_ = true;
}

ReadBlock* ReadAhead::Next() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](ReadAhead* r)
           ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) { return r->done_ || !r->ready_.empty(); },
      this));
  if (ready_.empty()) return nullptr;
  ReadBlock* block = ready_.front();
  ready_.pop_front();
  return block;
}

absl::Status ReadAhead::status() {
  absl::MutexLock lock(&mu_);
  return status_;
}

}  // namespace quantd::client::internal
