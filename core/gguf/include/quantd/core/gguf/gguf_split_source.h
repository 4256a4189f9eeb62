// GgufSplitSource: a model stored as llama.cpp split GGUF files
// (`name-00001-of-00003.gguf` ...; keys split.no, split.count,
// split.tensors.count) seen as one TensorSource. The first part carries the
// model's metadata; every part carries some tensors, each part its own data
// section. Parts are memory-mapped (GgufFileSource each).
//
// Thread safety: immutable after Open (see TensorSource).
#ifndef QUANTD_CORE_GGUF_GGUF_SPLIT_SOURCE_H_
#define QUANTD_CORE_GGUF_GGUF_SPLIT_SOURCE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quantd/core/gguf/gguf_file_source.h"
#include "quantd/core/gguf/tensor_source.h"

namespace quantd::core::gguf {

// llama.cpp's split file name: "<prefix>-<no+1, 5 digits>-of-<count, 5 digits>.gguf".
std::string SplitPath(const std::string& prefix, int split_no, int split_count);
// The prefix of a split file name ("dir/model" for "dir/model-00002-of-00003.gguf"),
// or "" when `path` does not have that form.
std::string SplitPrefix(const std::string& path);

class GgufSplitSource final : public TensorSource {
 public:
  // Opens every part of the split model `path` is a part of (any part may
  // be named). InvalidArgument when a part is missing, out of place (its
  // split.no / split.count disagree), or the tensor count differs from
  // split.tensors.count, naming the file.
  static absl::StatusOr<std::unique_ptr<GgufSplitSource>> Open(const std::string& path);

  const std::vector<GgufKv>& kvs() const override { return parts_[0]->kvs(); }
  const std::vector<GgufTensorInfo>& tensors() const override { return tensors_; }
  uint64_t alignment() const override { return parts_[0]->alignment(); }
  absl::Span<const uint8_t> StoredBytes(size_t index) const override;
  void ReadRows(size_t index, int64_t first_row, int64_t num_rows, float* dst) const override;
  void Prefetch(size_t index, uint64_t offset, uint64_t length) const override;
  void Release(size_t index) const override;
  std::string SourceDtype(size_t index) const override;
  uint64_t SourceBytes(size_t index) const override;

  int SplitOf(size_t index) const override;
  int SplitCount() const override { return static_cast<int>(parts_.size()); }
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  struct Where {
    int part;
    size_t local;
  };
  GgufSplitSource() = default;

  std::vector<std::unique_ptr<GgufFileSource>> parts_;
  std::vector<std::string> paths_;
  std::vector<GgufTensorInfo> tensors_;
  std::vector<Where> where_;
};

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_GGUF_SPLIT_SOURCE_H_
