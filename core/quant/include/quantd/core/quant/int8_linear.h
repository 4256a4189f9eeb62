// 8-bit linear weight quantization with ONNX Runtime's weight recipe
// (onnxruntime/python/tools/quantization/quant_utils.py: compute_scale_zp,
// quantize_nparray), bit-exact:
//
//   rmin = min(0, min w), rmax = max(0, max w)   (float32, per tensor or channel)
//   QInt8 (symmetric): a = max(|rmin|, |rmax|), range [-127, 127]
//                      ([-64, 64] with reduce_range), zero point 0
//   QUInt8:            range [0, 255] ([0, 127] with reduce_range),
//                      zp = round_half_even(qmin - rmin / s64)
//   s64 = double(float32(rmax - rmin)) / double(qmax - qmin); scale = float(s64)
//   s64 < FLT_MIN -> scale 1, zero point 0
//   q = clip(round_half_even(float32(w) / scale) + zp, type min, type max)
//
// Pure functions on caller-owned buffers; thread-safe.
#ifndef QUANTD_CORE_QUANT_INT8_LINEAR_H_
#define QUANTD_CORE_QUANT_INT8_LINEAR_H_

#include <cstdint>

namespace quantd::core::quant {

enum class Int8Type { kInt8, kUint8 };

struct Int8Params {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// Scale and zero point for values in [min_value, max_value].
Int8Params ComputeInt8Params(float min_value, float max_value, Int8Type type, bool reduce_range);

// Min and max of `count` values read with `stride` (count >= 1).
void MinMax(const float* values, int64_t count, int64_t stride, float* min_value, float* max_value);

// Quantizes `count` values (input stride `in_stride`, output stride
// `out_stride`) into int8 or uint8 bytes. Contiguous input and output (both
// strides 1) run the code kernel of ActiveCpuLevel() (AVX2 or scalar; the
// same bytes).
void QuantizeInt8(const float* values, int64_t count, int64_t in_stride, const Int8Params& params,
                  Int8Type type, uint8_t* out, int64_t out_stride);

// (q - zp) * scale, as DequantizeLinear computes it.
inline float DequantizeInt8(uint8_t byte, const Int8Params& params, Int8Type type) {
  int q = type == Int8Type::kInt8 ? static_cast<int8_t>(byte) : static_cast<int>(byte);
  return static_cast<float>(q - params.zero_point) * params.scale;
}

}  // namespace quantd::core::quant

#endif  // QUANTD_CORE_QUANT_INT8_LINEAR_H_
