#include "quantd/core/onnx/onnx_types.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace quantd::core {

int OnnxTypeBits(int32_t type) {
  switch (type) {
    case kOnnxBool:
    case kOnnxUint8:
    case kOnnxInt8:
    case kOnnxFloat8E4M3FN:
    case kOnnxFloat8E4M3FNUZ:
    case kOnnxFloat8E5M2:
    case kOnnxFloat8E5M2FNUZ:
      return 8;
    case kOnnxUint16:
    case kOnnxInt16:
    case kOnnxFloat16:
    case kOnnxBfloat16:
      return 16;
    case kOnnxFloat:
    case kOnnxInt32:
    case kOnnxUint32:
      return 32;
    case kOnnxInt64:
    case kOnnxUint64:
    case kOnnxDouble:
    case kOnnxComplex64:
      return 64;
    case kOnnxComplex128:
      return 128;
    case kOnnxUint4:
    case kOnnxInt4:
    case kOnnxFloat4E2M1:
      return 4;
    default:
      return 0;
  }
}

std::string OnnxTypeName(int32_t type) {
  static const char* const kNames[] = {
      "UNDEFINED",      "FLOAT",      "UINT8",          "INT8",       "UINT16",   "INT16",
      "INT32",          "INT64",      "STRING",         "BOOL",       "FLOAT16",  "DOUBLE",
      "UINT32",         "UINT64",     "COMPLEX64",      "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
      "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4",      "INT4",     "FLOAT4E2M1"};
  if (type >= 0 && type < static_cast<int32_t>(std::size(kNames))) return kNames[type];
  return absl::StrCat("type ", type);
}

bool IsFloatingType(int32_t type) {
  return type == kOnnxFloat || type == kOnnxFloat16 || type == kOnnxBfloat16 || type == kOnnxDouble;
}

absl::StatusOr<uint64_t> ElementCount(absl::Span<const int64_t> dims) {
  uint64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("negative dimension ", d));
    if (d != 0 && n > (uint64_t{1} << 62) / static_cast<uint64_t>(d)) {
      return absl::InvalidArgumentError("dimensions overflow: the element count exceeds 2^62");
    }
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

absl::StatusOr<uint64_t> ByteSize(int32_t type, uint64_t count) {
  int bits = OnnxTypeBits(type);
  if (bits == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported tensor data type ", OnnxTypeName(type)));
  }
  if (bits == 4) return (count + 1) / 2;
  return count * static_cast<uint64_t>(bits / 8);
}

}  // namespace quantd::core
