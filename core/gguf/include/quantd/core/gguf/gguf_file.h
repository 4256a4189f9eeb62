// GGUF v2/v3 container: parsing (from a memory-mapped file) and header
// serialisation (always v3).
//
// GgufFile::Parse validates everything it reads against the size of the
// buffer and refuses malformed files with InvalidArgument naming the problem
// and its byte offset: bad magic or version, counts or strings running past
// the end, unknown metadata or tensor types, dims whose product overflows,
// misaligned / out-of-range / overlapping tensor data, duplicate names.
//
// Metadata values are kept in their encoded form (`raw`), so copying them to
// an output file is exact for every value type, nested arrays included.
//
// Ownership: a parsed GgufFile does not own or reference the input buffer
// after Parse returns; tensor data is addressed by offsets. Thread safety:
// immutable after Parse; const methods may be called from any thread.
#ifndef QUANTD_CORE_GGUF_GGUF_FILE_H_
#define QUANTD_CORE_GGUF_GGUF_FILE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/gguf/ggml_types.h"

namespace quantd::core::gguf {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr uint32_t kGgufVersion = 3;
inline constexpr uint64_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxDims = 4;

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// One metadata entry. `raw` is the value exactly as encoded after the type
// field (for arrays: element type, count, elements).
struct GgufKv {
  std::string key;
  GgufValueType type;
  std::string raw;

  // Integer value of any integer/bool scalar type; nullopt otherwise.
  std::optional<int64_t> AsInt() const;
  std::optional<std::string> AsString() const;
  // For arrays: element type and count.
  std::optional<std::pair<GgufValueType, uint64_t>> ArrayInfo() const;
  // First element of an integer array (per-layer hparams); nullopt otherwise.
  std::optional<int64_t> FirstArrayInt() const;

  static GgufKv Uint32(std::string key, uint32_t v);
  static GgufKv Uint16(std::string key, uint16_t v);
  static GgufKv Int32(std::string key, int32_t v);
  static GgufKv String(std::string key, absl::string_view v);
  static GgufKv Bool(std::string key, bool v);
  // Arrays: element type, count, then the elements (strings length-prefixed).
  static GgufKv StringArray(std::string key, absl::Span<const std::string> v);
  static GgufKv Float32Array(std::string key, absl::Span<const float> v);
  static GgufKv Int32Array(std::string key, absl::Span<const int32_t> v);
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ne[0] is the row length (innermost)
  GgmlType type;
  uint64_t offset = 0;  // relative to the data section
  uint64_t nbytes = 0;

  int64_t Elements() const;
  int64_t Rows() const { return ne.empty() || ne[0] == 0 ? 0 : Elements() / ne[0]; }
};

class GgufFile {
 public:
  // Parses and validates `bytes` (a whole GGUF file).
  static absl::StatusOr<GgufFile> Parse(absl::Span<const uint8_t> bytes);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute file offset
  const std::vector<GgufKv>& kvs() const { return kvs_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  const GgufKv* FindKv(absl::string_view key) const;
  const GgufTensorInfo* FindTensor(absl::string_view name) const;

 private:
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::vector<GgufTensorInfo> tensors_;
};

// Sets `kv` the way gguf_set_val_* does: an existing key is removed and the
// new value appended at the end.
void SetKv(std::vector<GgufKv>* kvs, GgufKv kv);
void RemoveKv(std::vector<GgufKv>* kvs, absl::string_view key);

// Assigns data offsets (each tensor padded to `alignment`) and returns the
// total size of the data section.
uint64_t LayoutTensors(std::vector<GgufTensorInfo>* tensors, uint64_t alignment);

// Serialises a v3 header (magic through tensor infos), without the padding
// that precedes the data section. As ggml's writer does, a tensor's trailing
// dimensions of size 1 are not written (ne {4096, 1} is stored as {4096}).
std::string SerializeHeader(const std::vector<GgufKv>& kvs,
                            const std::vector<GgufTensorInfo>& tensors);

// A GGUF file being written: its atomic writer, positioned at the start of
// the data section (header written and padded), and the file's final size.
struct GgufFileStart {
  std::unique_ptr<AtomicFileWriter> writer;
  uint64_t total_bytes = 0;
};

// Lays out `tensors` (offsets padded to `alignment`), creates `path`
// atomically and writes the header and its padding. The caller streams the
// tensor data in order and commits. `digests`: as AtomicFileWriter::Create.
// Errors: those of AtomicFileWriter.
absl::StatusOr<GgufFileStart> StartGgufFile(const std::string& path, const std::vector<GgufKv>& kvs,
                                            std::vector<GgufTensorInfo>* tensors,
                                            uint64_t alignment, OutputDigests* digests = nullptr);

inline uint64_t AlignUp(uint64_t v, uint64_t alignment) {
  return (v + alignment - 1) / alignment * alignment;
}

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_GGUF_FILE_H_
