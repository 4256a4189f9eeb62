#include "quantd/core/quant/int8_linear.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "quantd/core/quant/bits_traits.h"

namespace quantd::core::quant {
namespace {

// Round half to even for |x| <= 2^22 (1.5 * 2^23 forces rounding at the
// units place in the current (nearest-even) rounding mode).
inline float RoundHalfEven(float x) {
  constexpr float kMagic = 12582912.0f;
  return (x + kMagic) - kMagic;
}

// ORT's weight ranges: QInt8 symmetric over [-127, 127] ([-64, 64] with
// reduce_range); QUInt8 over [0, 255] ([0, 127] with reduce_range).
constexpr int kInt8SymmetricMax = Int8Bits::kMax;          // 127
constexpr int kInt8ReducedMax = (Int8Bits::kMax + 1) / 2;  // 64
constexpr int kUint8ReducedMax = Uint8Bits::kMax / 2;      // 127

}  // namespace

Int8Params ComputeInt8Params(float min_value, float max_value, Int8Type type, bool reduce_range) {
  float rmin = std::min(min_value, 0.0f);
  float rmax = std::max(max_value, 0.0f);
  const bool symmetric = type == Int8Type::kInt8;
  double qmin, qmax;
  if (type == Int8Type::kInt8) {
    qmax = reduce_range ? kInt8ReducedMax : kInt8SymmetricMax;
    qmin = -qmax;
  } else {
    qmin = Uint8Bits::kMin;
    qmax = reduce_range ? kUint8ReducedMax : Uint8Bits::kMax;
  }
  if (symmetric) {
    float a = std::max(std::fabs(rmin), std::fabs(rmax));
    rmin = -a;
    rmax = a;
  }
  const double dr = static_cast<double>(rmax - rmin);  // float32 subtraction first
  const double s64 = dr / (qmax - qmin);
  Int8Params p;
  if (s64 < static_cast<double>(FLT_MIN)) return p;  // scale 1, zp 0
  if (symmetric) {
    p.zero_point = static_cast<int32_t>(std::nearbyint((qmin + qmax) / 2.0));
  } else {
    p.zero_point = static_cast<int32_t>(std::nearbyint(qmin - static_cast<double>(rmin) / s64));
  }
  p.scale = static_cast<float>(s64);
  return p;
}

void MinMax(const float* values, int64_t count, int64_t stride, float* min_value,
            float* max_value) {
  float mn = values[0], mx = values[0];
  for (int64_t i = 1; i < count; ++i) {
    float v = values[i * stride];
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  *min_value = mn;
  *max_value = mx;
}

void QuantizeInt8(const float* values, int64_t count, int64_t in_stride, const Int8Params& p,
                  Int8Type type, uint8_t* out, int64_t out_stride) {
  const float lo = static_cast<float>(type == Int8Type::kInt8 ? Int8Bits::kMin : Uint8Bits::kMin);
  const float hi = static_cast<float>(type == Int8Type::kInt8 ? Int8Bits::kMax : Uint8Bits::kMax);
  const float zp = static_cast<float>(p.zero_point);
  for (int64_t i = 0; i < count; ++i) {
    float x = values[i * in_stride] / p.scale;
    x = x < -512.0f ? -512.0f : (x > 512.0f ? 512.0f : x);  // NaN-free weights assumed
    float q = RoundHalfEven(x) + zp;
    q = q < lo ? lo : (q > hi ? hi : q);
    int v = static_cast<int>(q);
    out[i * out_stride] =
        static_cast<uint8_t>(type == Int8Type::kInt8 ? static_cast<int8_t>(v) : v);
  }
}

}  // namespace quantd::core::quant
