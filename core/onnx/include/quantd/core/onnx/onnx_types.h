// Facts about ONNX tensor element types (TensorProto.DataType), including the
// ones newer than the onnx.proto Debian packages (FLOAT8*, INT4, UINT4, FP4).
#ifndef QUANTD_CORE_ONNX_ONNX_TYPES_H_
#define QUANTD_CORE_ONNX_ONNX_TYPES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace quantd::core {

enum OnnxType : int32_t {
  kOnnxUndefined = 0,
  kOnnxFloat = 1,
  kOnnxUint8 = 2,
  kOnnxInt8 = 3,
  kOnnxUint16 = 4,
  kOnnxInt16 = 5,
  kOnnxInt32 = 6,
  kOnnxInt64 = 7,
  kOnnxString = 8,
  kOnnxBool = 9,
  kOnnxFloat16 = 10,
  kOnnxDouble = 11,
  kOnnxUint32 = 12,
  kOnnxUint64 = 13,
  kOnnxComplex64 = 14,
  kOnnxComplex128 = 15,
  kOnnxBfloat16 = 16,
  kOnnxFloat8E4M3FN = 17,
  kOnnxFloat8E4M3FNUZ = 18,
  kOnnxFloat8E5M2 = 19,
  kOnnxFloat8E5M2FNUZ = 20,
  kOnnxUint4 = 21,
  kOnnxInt4 = 22,
  kOnnxFloat4E2M1 = 23,
};

// Bits per element; 0 for UNDEFINED, STRING and values this build does not know.
int OnnxTypeBits(int32_t type);
// "FLOAT", "FLOAT16", ... or "type 42" for unknown values.
std::string OnnxTypeName(int32_t type);
bool IsFloatingType(int32_t type);  // FLOAT, FLOAT16, BFLOAT16, DOUBLE

// Number of elements of a tensor with `dims`; InvalidArgument for negative
// dimensions or a product that overflows 2^62.
absl::StatusOr<uint64_t> ElementCount(absl::Span<const int64_t> dims);
// Bytes that `count` elements of `type` occupy (4-bit types pack two per byte).
// InvalidArgument for unknown types and strings.
absl::StatusOr<uint64_t> ByteSize(int32_t type, uint64_t count);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_ONNX_TYPES_H_
