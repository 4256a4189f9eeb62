// SafetensorsWriter: streams one `.safetensors` file (the format Hugging Face
// checkpoints and MLX models store weights in), atomically.
//
// Layout written: an 8-byte little-endian header length N, N bytes of compact
// JSON, then every tensor's bytes back to back in the order the tensors were
// given to Create(). The JSON is one object with the keys sorted bytewise
// (each tensor's {"data_offsets":[begin,end],"dtype":..,"shape":[..]}, and
// "__metadata__" with string values when metadata is given) - what MLX's
// `mx.save_safetensors` writes (nlohmann::json's sorted map, dump() without
// indentation). MLX does not pad the header (header_alignment 1); the
// Hugging Face `safetensors` library pads it with spaces to a multiple of 8
// (header_alignment 8). Readers accept both.
//
// Usage: Create() with every tensor's name, dtype and shape (the header is
// written first, so all sizes are known up front), Write() the data section in
// one or more pieces in tensor order, then Commit(). Destroying an uncommitted
// writer leaves no file behind (AtomicFileWriter).
//
// Thread safety: not thread-safe; one writer per thread.
#ifndef QUANTD_CORE_CHECKPOINT_SAFETENSORS_WRITER_H_
#define QUANTD_CORE_CHECKPOINT_SAFETENSORS_WRITER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "quantd/core/base/atomic_file.h"

namespace quantd::core::checkpoint {

// Bytes per element of a safetensors dtype name ("F64", "F32", "F16", "BF16",
// "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"); 0 when the
// name is not one of those.
int SafetensorsDtypeSize(absl::string_view dtype);

struct SafetensorsTensorSpec {
  std::string name;
  std::string dtype;           // a safetensors dtype name
  std::vector<int64_t> shape;  // outermost first; {} is a scalar

  // Elements x dtype size. REQUIRES: a known dtype, non-negative dims.
  uint64_t nbytes() const;
};

struct SafetensorsWriterOptions {
  // "__metadata__" entries (omitted when empty). MLX writes {"format": "mlx"}.
  std::map<std::string, std::string> metadata;
  // The header is padded with spaces to a multiple of this (1 = no padding).
  uint64_t header_alignment = 1;
  // Hash the file while writing it and record its digest here at Commit
  // (AtomicFileWriter::Create); null: not hashed.
  OutputDigests* digests = nullptr;
};

class SafetensorsWriter {
 public:
  // Validates the specs and writes the header to a temp file beside `path`.
  // InvalidArgument: duplicate or empty names, "__metadata__" as a tensor
  // name, an unknown dtype, a negative dimension, header_alignment 0.
  // I/O errors as AtomicFileWriter::Create reports them.
  static absl::StatusOr<std::unique_ptr<SafetensorsWriter>> Create(
      const std::string& path, std::vector<SafetensorsTensorSpec> tensors,
      const SafetensorsWriterOptions& options = {});

  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Appends data-section bytes (tensor after tensor, in spec order).
  // FailedPrecondition: more bytes than the tensors hold, or after Commit().
  absl::Status Write(absl::Span<const uint8_t> bytes);
  absl::Status Write(const void* data, size_t size) {
    return Write(absl::Span<const uint8_t>(static_cast<const uint8_t*>(data), size));
  }

  // Checks that every tensor's bytes were written, then fsyncs and renames
  // the file into place. FailedPrecondition when bytes are missing.
  absl::Status Commit();

  // The spec of the tensor the next Write() continues, or nullptr when every
  // byte has been written.
  const SafetensorsTensorSpec* current_tensor() const;
  // 8 + header length (where the data section starts).
  uint64_t data_offset() const { return data_offset_; }
  uint64_t data_bytes() const { return data_bytes_; }
  uint64_t file_bytes() const { return data_offset_ + data_bytes_; }

 private:
  SafetensorsWriter(std::unique_ptr<AtomicFileWriter> file,
                    std::vector<SafetensorsTensorSpec> tensors, std::vector<uint64_t> ends,
                    uint64_t data_offset);

  // Constant after construction.
  const std::unique_ptr<AtomicFileWriter> file_;
  const std::vector<SafetensorsTensorSpec> tensors_;
  const std::vector<uint64_t> ends_;  // data-section end offset of each tensor
  const uint64_t data_offset_;
  const uint64_t data_bytes_;

  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace quantd::core::checkpoint

#endif  // QUANTD_CORE_CHECKPOINT_SAFETENSORS_WRITER_H_
