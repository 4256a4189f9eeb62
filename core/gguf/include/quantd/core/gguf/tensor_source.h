// TensorSource: what the GGUF quantize path (RunGguf) reads -- a model seen
// as GGUF metadata, tensor infos and tensor values, wherever they come from.
//
// Two implementations: GgufFileSource (a parsed, memory-mapped GGUF file,
// whose tensors are stored bytes) and checkpoint::CheckpointGgufSource (a
// Hugging Face checkpoint seen as its F32 conversion, whose values are
// computed on demand). RunGguf gives the same bytes for a checkpoint source
// as for the F32 GGUF file the converter would write from it, because both
// offer the same kvs(), tensors() and values.
//
// Values are read in one of two ways: StoredBytes() (the tensor's bytes in
// tensors()[i].type, when the source holds them as such: copied through
// unchanged or dequantized by the reader) or ReadRows() (F32 values of a
// range of rows, for every tensor whose type can be dequantized).
//
// Ownership: spans returned by StoredBytes stay valid for the source's
// lifetime. Thread safety: a source is immutable once opened; every const
// method may be called concurrently, ReadRows for the same or different
// tensors alike, and Prefetch/Release concurrently with reads (they are
// hints about resident memory, never about the values).
#ifndef QUANTD_CORE_GGUF_TENSOR_SOURCE_H_
#define QUANTD_CORE_GGUF_TENSOR_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "quantd/core/gguf/gguf_file.h"

namespace quantd::core::gguf {

class TensorSource {
 public:
  virtual ~TensorSource() = default;

  // Metadata, in file order.
  virtual const std::vector<GgufKv>& kvs() const = 0;
  // Tensor infos, in file order; offsets laid out with alignment().
  virtual const std::vector<GgufTensorInfo>& tensors() const = 0;
  // The data alignment (general.alignment, or 32).
  virtual uint64_t alignment() const = 0;

  // Tensor `index`'s bytes as stored in tensors()[index].type
  // (tensors()[index].nbytes long), or an empty span when the source only
  // computes values (then use ReadRows).
  virtual absl::Span<const uint8_t> StoredBytes(size_t index) const = 0;
  // Writes rows [first_row, first_row + num_rows) of tensor `index` (rows of
  // ne[0] values) as F32 to `dst`.
  // REQUIRES: index < tensors().size(), the rows exist,
  // CanDequantize(tensors()[index].type), dst holds num_rows * ne[0] floats.
  virtual void ReadRows(size_t index, int64_t first_row, int64_t num_rows, float* dst) const = 0;

  // Hint: bytes [offset, offset + length) of tensor `index`'s stored bytes
  // (StoredBytes; the whole tensor when that range is all of it) are about
  // to be read. A run calls it per chunk from the chunk's thread, so the
  // work of making the pages resident is shared by the threads.
  virtual void Prefetch(size_t index, uint64_t offset, uint64_t length) const {
    (void)index;
    (void)offset;
    (void)length;
  }
  // Hint: tensor `index` is done with; its resident input pages may go.
  virtual void Release(size_t index) const = 0;

  // For reports: the type name and byte size tensor `index` has in the
  // input (a checkpoint's "BF16" where tensors() says F32).
  virtual std::string SourceDtype(size_t index) const = 0;
  virtual uint64_t SourceBytes(size_t index) const = 0;

  // Split models (several GGUF files): the part tensor `index` is stored in
  // (0-based) and how many parts there are; one part for everything else.
  virtual int SplitOf(size_t index) const {
    (void)index;
    return 0;
  }
  virtual int SplitCount() const { return 1; }
};

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_TENSOR_SOURCE_H_
