// SafetensorsFile: one memory-mapped `.safetensors` file (a Hugging Face
// checkpoint shard), validated before any tensor data is touched.
//
// Layout (the safetensors format): an 8-byte little-endian header length N,
// N bytes of JSON ({"name": {"dtype", "shape", "data_offsets": [begin, end]},
// optional "__metadata__"}), then the data section; offsets are relative to
// the data section.
//
// Open() refuses, naming the file, the tensor and the absolute byte offset
// where one applies:
//   - DataLoss: the file is shorter than its header length or than a
//     tensor's data_offsets (a truncated shard);
//   - InvalidArgument: header length > 100 MiB, malformed JSON or JSON
//     nested deeper than a safetensors header can be, wrong field types,
//     data_offsets reversed or not equal to dtype size x shape, overlapping
//     tensors, a dtype other than F32/F16/BF16;
//   - NotFound: the file does not exist.
//
// Ownership: owns the mapping; tensor data spans stay valid while the
// SafetensorsFile lives. Thread safety: immutable after Open; const methods
// may be called from any thread.
#ifndef QUANTD_CORE_CHECKPOINT_SAFETENSORS_H_
#define QUANTD_CORE_CHECKPOINT_SAFETENSORS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "quantd/core/base/mapped_file.h"

namespace quantd::core::checkpoint {

// Largest header Open() accepts (the safetensors library's own limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

enum class SafetensorsDtype { kF32, kF16, kBF16 };

// "F32", "F16", "BF16".
absl::string_view DtypeName(SafetensorsDtype dtype);
int DtypeSize(SafetensorsDtype dtype);
// The dtype a header names ("F32", "F16", "BF16"); nullopt for any other name.
std::optional<SafetensorsDtype> ParseDtype(absl::string_view name);

// Widens `count` elements of `dtype` at `src` to float32 (F16 and BF16
// exactly, F32 copied). `src` may have any alignment: a shard whose header
// length is not a multiple of 8 puts every 2-byte element at an odd address,
// and those go through a small aligned buffer instead of being read in place.
void DtypeToFloat(SafetensorsDtype dtype, const uint8_t* src, size_t count, float* dst);

struct SafetensorsTensor {
  std::string name;
  SafetensorsDtype dtype;
  std::vector<int64_t> shape;  // outermost first, as stored (PyTorch order)
  uint64_t offset = 0;         // absolute file offset of the first byte
  uint64_t nbytes = 0;

  int64_t Elements() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return mapped_->path(); }
  // Sorted by name (the order the converter reads a shard in).
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  // nullptr when absent.
  const SafetensorsTensor* Find(absl::string_view name) const;
  // The tensor's bytes. REQUIRES: `tensor` came from this file.
  absl::Span<const uint8_t> Data(const SafetensorsTensor& tensor) const;
  // Drops the tensor's resident pages (see MappedFile::ReleasePages); the
  // second form only the whole pages within bytes [begin, begin + length) of
  // the tensor's data.
  void Release(const SafetensorsTensor& tensor) const;
  void Release(const SafetensorsTensor& tensor, uint64_t begin, uint64_t length) const;

 private:
  SafetensorsFile(std::unique_ptr<MappedFile> mapped, std::vector<SafetensorsTensor> tensors)
      : mapped_(std::move(mapped)), tensors_(std::move(tensors)) {}

  const std::unique_ptr<MappedFile> mapped_;
  const std::vector<SafetensorsTensor> tensors_;
};

// Deepest JSON nesting in `text` (brackets outside strings). Used to refuse
// JSON bombs before handing text to a parser.
int JsonNestingDepth(absl::string_view text);

}  // namespace quantd::core::checkpoint

#endif  // QUANTD_CORE_CHECKPOINT_SAFETENSORS_H_
