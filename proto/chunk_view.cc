// ParseUploadChunk and ParseDownloadChunk (quantd/api/chunk_view.h).
#include "quantd/api/chunk_view.h"

#include <algorithm>

namespace quantd::api {
namespace {

// Keys are (field number << 3) | wire type: 0 varint, 2 length-delimited.
constexpr uint64_t kUploadChunkKey = (2 << 3) | 2;     // UploadRequest.chunk
constexpr uint64_t kUploadOffsetKey = (1 << 3) | 0;    // UploadChunk.offset
constexpr uint64_t kUploadDataKey = (2 << 3) | 2;      // UploadChunk.data
constexpr uint64_t kDownloadOffsetKey = (2 << 3) | 0;  // DownloadChunk.offset
constexpr uint64_t kDownloadDataKey = (3 << 3) | 2;    // DownloadChunk.data

// Reads bytes across a message's slices.
class SliceCursor {
 public:
  explicit SliceCursor(const std::vector<grpc::Slice>& slices) : slices_(slices) {
    for (const grpc::Slice& s : slices) left_ += s.size();
    Settle();
  }
  uint64_t left() const { return left_; }

  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (left_ == 0) return false;
      const uint8_t b = slices_[slice_].begin()[pos_];
      Advance(1);
      if (shift == 63 && b > 1) return false;  // more than 64 bits
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  // The next `n` bytes as pieces of the slices.
  bool Take(uint64_t n, std::vector<absl::string_view>* pieces) {
    if (n > left_) return false;
    while (n > 0) {
      const grpc::Slice& s = slices_[slice_];
      const size_t here = static_cast<size_t>(std::min<uint64_t>(n, s.size() - pos_));
      pieces->emplace_back(reinterpret_cast<const char*>(s.begin()) + pos_, here);
      Advance(here);
      n -= here;
    }
    return true;
  }

 private:
  void Advance(size_t n) {
    pos_ += n;
    left_ -= n;
    Settle();
  }
  // Moves past the slices read to their end (and empty ones).
  void Settle() {
    while (slice_ < slices_.size() && pos_ == slices_[slice_].size()) {
      ++slice_;
      pos_ = 0;
    }
  }

  const std::vector<grpc::Slice>& slices_;
  size_t slice_ = 0;
  size_t pos_ = 0;
  uint64_t left_ = 0;
};

// Reads `offset` and `data` fields (keys `offset_key`, `data_key`) up to
// the end of `in`; false on any other field or a malformed one.
bool ParseOffsetAndData(SliceCursor* in, uint64_t offset_key, uint64_t data_key, ChunkView* chunk) {
  while (in->left() > 0) {
    uint64_t key = 0;
    if (!in->Varint(&key)) return false;
    if (key == offset_key) {
      if (!in->Varint(&chunk->offset)) return false;
    } else if (key == data_key) {
      uint64_t n = 0;
      chunk->data.clear();
      if (!in->Varint(&n) || !in->Take(n, &chunk->data)) return false;
      chunk->size = n;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

bool ParseUploadChunk(const std::vector<grpc::Slice>& slices, ChunkView* chunk) {
  *chunk = ChunkView();
  SliceCursor in(slices);
  uint64_t key = 0, length = 0;
  // Exactly one top-level field, the chunk, spanning the whole message.
  if (!in.Varint(&key) || key != kUploadChunkKey || !in.Varint(&length) || length != in.left()) {
    return false;
  }
  return ParseOffsetAndData(&in, kUploadOffsetKey, kUploadDataKey, chunk);
}

bool ParseDownloadChunk(const std::vector<grpc::Slice>& slices, ChunkView* chunk) {
  *chunk = ChunkView();
  SliceCursor in(slices);
  return ParseOffsetAndData(&in, kDownloadOffsetKey, kDownloadDataKey, chunk);
}

}  // namespace quantd::api
