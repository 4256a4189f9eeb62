// GgufFileSource: a GGUF file on disk as a TensorSource -- memory-mapped,
// parsed and validated by GgufFile::Parse. Tensor bytes are read straight
// from the mapping; Release drops a tensor's resident pages, so reading a
// model tensor by tensor keeps memory at about one tensor.
//
// Thread safety: immutable after Open (see TensorSource).
#ifndef QUANTD_CORE_GGUF_GGUF_FILE_SOURCE_H_
#define QUANTD_CORE_GGUF_GGUF_FILE_SOURCE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "quantd/core/base/mapped_file.h"
#include "quantd/core/gguf/gguf_file.h"
#include "quantd/core/gguf/tensor_source.h"

namespace quantd::core::gguf {

class GgufFileSource final : public TensorSource {
 public:
  // Maps and parses `path`. Errors: NotFound / Internal from file access;
  // InvalidArgument (prefixed with the path) for a malformed file.
  static absl::StatusOr<std::unique_ptr<GgufFileSource>> Open(const std::string& path);

  GgufFileSource(const GgufFileSource&) = delete;
  GgufFileSource& operator=(const GgufFileSource&) = delete;

  const GgufFile& file() const { return file_; }

  const std::vector<GgufKv>& kvs() const override { return file_.kvs(); }
  const std::vector<GgufTensorInfo>& tensors() const override { return file_.tensors(); }
  uint64_t alignment() const override { return file_.alignment(); }
  absl::Span<const uint8_t> StoredBytes(size_t index) const override;
  void ReadRows(size_t index, int64_t first_row, int64_t num_rows, float* dst) const override;
  // Faults the tensor's pages in with one call (MADV_POPULATE_READ, Linux
  // 5.14+) instead of one fault per page; a no-op where unsupported.
  void Prefetch(size_t index, uint64_t offset, uint64_t length) const override;
  void Release(size_t index) const override;
  std::string SourceDtype(size_t index) const override;
  uint64_t SourceBytes(size_t index) const override;

 private:
  GgufFileSource(std::unique_ptr<MappedFile> mapped, GgufFile file)
      : mapped_(std::move(mapped)), file_(std::move(file)) {}

  const std::unique_ptr<MappedFile> mapped_;
  const GgufFile file_;
};

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_GGUF_FILE_SOURCE_H_
