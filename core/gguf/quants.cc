// Type dispatch for quantize/dequantize and the dequantizers.
#include <cstring>

#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/half.h"
#include "quants_internal.h"

namespace quantd::core::gguf {
namespace {

template <int kBits, bool kAffine, class Block>
void DequantizeLegacy(const Block* x, float* y, int64_t n) {
  // Unpack the levels, then scale (vectorisable): q*d (+ m) as the reference.
  constexpr int kOffset = kAffine ? 0 : 1 << (kBits - 1);
  int32_t q[kQK];
  for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
    const float d = HalfToFloat(x[i].d);
    float m = 0.0f;
    if constexpr (kAffine) m = HalfToFloat(x[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      q[j] = x[i].qs[j] & 0x0F;
      q[j + kQK / 2] = x[i].qs[j] >> 4;
    }
    if constexpr (kBits == 5) {
      uint32_t qh;
      std::memcpy(&qh, x[i].qh, sizeof(qh));
      for (int e = 0; e < kQK; ++e) q[e] |= static_cast<int32_t>(((qh >> e) & 1u) << 4);
    }
    for (int e = 0; e < kQK; ++e) {
      if constexpr (kAffine) {
        y[e] = static_cast<float>(q[e]) * d + m;
      } else {
        y[e] = static_cast<float>(q[e] - kOffset) * d;
      }
    }
  }
}

void DequantizeQ8_0(const BlockQ8_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = HalfToFloat(x[i].d);
    for (int j = 0; j < kQK; ++j) y[i * kQK + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void DequantizeIQ4_NL(const BlockIQ4_NL* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = HalfToFloat(x[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[i * kQK + j] = d * static_cast<float>(kIq4nlValues[x[i].qs[j] & 0xF]);
      y[i * kQK + j + kQK / 2] = d * static_cast<float>(kIq4nlValues[x[i].qs[j] >> 4]);
    }
  }
}

void DequantizeQ2_K(const BlockQ2_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    const float min = HalfToFloat(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int nn = 0; nn < kQKK; nn += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * static_cast<float>(sc & 0xF);
          const float ml = min * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) {
            *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
          }
        }
        shift += 2;
      }
      q += 32;
    }
  }
}

void DequantizeQ3_K(const BlockQ3_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d_all = HalfToFloat(x[i].d);
    int8_t scales[16];
    for (int j = 0; j < 16; ++j) {
      int sc = j < 8 ? (x[i].scales[j] & 0xF) : (x[i].scales[j - 8] >> 4);
      sc |= ((x[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4;
      scales[j] = static_cast<int8_t>(sc - 32);
    }
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    int is = 0;
    for (int nn = 0; nn < kQKK; nn += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d_all * static_cast<float>(scales[is++]);
          for (int l = 0; l < 16; ++l) {
            const int k = l + 16 * half;
            const int v = ((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
        shift += 2;
        m = static_cast<uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

template <int kBits, class Block>
void DequantizeQkMin(const Block* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    const float min = HalfToFloat(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < kQKK; j += 64) {
      uint8_t sc, m;
      GetScaleMinK4(is, x[i].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      GetScaleMinK4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        int v = q[l] & 0xF;
        if constexpr (kBits == 5) v += (x[i].qh[l] & u1) ? 16 : 0;
        *y++ = d1 * static_cast<float>(v) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        int v = q[l] >> 4;
        if constexpr (kBits == 5) v += (x[i].qh[l] & u2) ? 16 : 0;
        *y++ = d2 * static_cast<float>(v) - m2;
      }
      q += 32;
      is += 2;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

void DequantizeQ6_K(const BlockQ6_K* x, float* y, int64_t n) {
  // Unpack the 6-bit levels first, then scale: value = (d * scale) * q, the
  // reference's order. Element e belongs to sub-block e / 16.
  int8_t q[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = x[i].ql + 64 * half;
      const uint8_t* qh = x[i].qh + 32 * half;
      int8_t* qq = q + 128 * half;
      for (int l = 0; l < 32; ++l) {
        qq[l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        qq[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        qq[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        qq[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    for (int j = 0; j < kQKK / 16; ++j) {
      const float dl = d * static_cast<float>(x[i].scales[j]);
      for (int e = 0; e < 16; ++e) y[16 * j + e] = dl * static_cast<float>(q[16 * j + e]);
    }
    y += kQKK;
  }
}

}  // namespace

bool QuantsUseAvx2() { return ActiveCpuLevel() >= CpuLevel::kAvx2; }

bool CanQuantize(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: case GgmlType::kF16: case GgmlType::kBF16:
    case GgmlType::kQ8_0: case GgmlType::kQ4_0: case GgmlType::kQ4_1:
    case GgmlType::kQ5_0: case GgmlType::kQ5_1: case GgmlType::kQ2_K:
    case GgmlType::kQ3_K: case GgmlType::kQ4_K: case GgmlType::kQ5_K:
    case GgmlType::kQ6_K: case GgmlType::kIQ4_NL:
      return true;
    default:
      return false;
  }
}

bool CanDequantize(GgmlType type) { return CanQuantize(type); }

void QuantizeRow_ref(GgmlType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::kF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = FloatToHalf(src[i]);
      return;
    }
    case GgmlType::kBF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = FloatToBfloat16(src[i]);
      return;
    }
    case GgmlType::kQ4_0: return QuantizeQ4_0_ref(src, static_cast<BlockQ4_0*>(dst), n);
    case GgmlType::kQ4_1: return QuantizeQ4_1_ref(src, static_cast<BlockQ4_1*>(dst), n);
    case GgmlType::kQ5_0: return QuantizeQ5_0_ref(src, static_cast<BlockQ5_0*>(dst), n);
    case GgmlType::kQ5_1: return QuantizeQ5_1_ref(src, static_cast<BlockQ5_1*>(dst), n);
    case GgmlType::kQ8_0: return QuantizeQ8_0_ref(src, static_cast<BlockQ8_0*>(dst), n);
    case GgmlType::kIQ4_NL: return QuantizeIQ4_NL_ref(src, static_cast<BlockIQ4_NL*>(dst), n);
    case GgmlType::kQ2_K: return QuantizeQ2_K_ref(src, static_cast<BlockQ2_K*>(dst), n);
    case GgmlType::kQ3_K: return QuantizeQ3_K_ref(src, static_cast<BlockQ3_K*>(dst), n);
    case GgmlType::kQ4_K: return QuantizeQ4_K_ref(src, static_cast<BlockQ4_K*>(dst), n);
    case GgmlType::kQ5_K: return QuantizeQ5_K_ref(src, static_cast<BlockQ5_K*>(dst), n);
    case GgmlType::kQ6_K: return QuantizeQ6_K_ref(src, static_cast<BlockQ6_K*>(dst), n);
    default:
      return;  // REQUIRES CanQuantize(type)
  }
}

void QuantizeRow(GgmlType type, const float* src, void* dst, int64_t n) {
  if (QuantsUseAvx2()) {
    switch (type) {
      case GgmlType::kQ8_0: return internal::QuantizeQ8_0_avx2(src, static_cast<BlockQ8_0*>(dst), n);
      case GgmlType::kQ4_0: return internal::QuantizeQ4_0_avx2(src, static_cast<BlockQ4_0*>(dst), n);
      case GgmlType::kIQ4_NL: return internal::QuantizeIQ4_NL_avx2(src, static_cast<BlockIQ4_NL*>(dst), n);
      case GgmlType::kQ2_K: return internal::QuantizeQ2_K_avx2(src, static_cast<BlockQ2_K*>(dst), n);
      case GgmlType::kQ3_K: return internal::QuantizeQ3_K_avx2(src, static_cast<BlockQ3_K*>(dst), n);
      case GgmlType::kQ4_K: return internal::QuantizeQ4_K_avx2(src, static_cast<BlockQ4_K*>(dst), n);
      case GgmlType::kQ5_K: return internal::QuantizeQ5_K_avx2(src, static_cast<BlockQ5_K*>(dst), n);
      case GgmlType::kQ6_K: return internal::QuantizeQ6_K_avx2(src, static_cast<BlockQ6_K*>(dst), n);
      default:
        break;
    }
  }
  QuantizeRow_ref(type, src, dst, n);
}

void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::kF16: return HalfToFloatSpan(static_cast<const uint16_t*>(src), dst, static_cast<size_t>(n));
    case GgmlType::kBF16:
      return Bfloat16ToFloatSpan(static_cast<const uint16_t*>(src), dst, static_cast<size_t>(n));
    case GgmlType::kQ4_0: return DequantizeLegacy<4, false>(static_cast<const BlockQ4_0*>(src), dst, n);
    case GgmlType::kQ4_1: return DequantizeLegacy<4, true>(static_cast<const BlockQ4_1*>(src), dst, n);
    case GgmlType::kQ5_0: return DequantizeLegacy<5, false>(static_cast<const BlockQ5_0*>(src), dst, n);
    case GgmlType::kQ5_1: return DequantizeLegacy<5, true>(static_cast<const BlockQ5_1*>(src), dst, n);
    case GgmlType::kQ8_0: return DequantizeQ8_0(static_cast<const BlockQ8_0*>(src), dst, n);
    case GgmlType::kIQ4_NL: return DequantizeIQ4_NL(static_cast<const BlockIQ4_NL*>(src), dst, n);
    case GgmlType::kQ2_K: return DequantizeQ2_K(static_cast<const BlockQ2_K*>(src), dst, n);
    case GgmlType::kQ3_K: return DequantizeQ3_K(static_cast<const BlockQ3_K*>(src), dst, n);
    case GgmlType::kQ4_K: return DequantizeQkMin<4>(static_cast<const BlockQ4_K*>(src), dst, n);
    case GgmlType::kQ5_K: return DequantizeQkMin<5>(static_cast<const BlockQ5_K*>(src), dst, n);
    case GgmlType::kQ6_K: return DequantizeQ6_K(static_cast<const BlockQ6_K*>(src), dst, n);
    default:
      return;  // REQUIRES CanDequantize(type)
  }
}

}  // namespace quantd::core::gguf
