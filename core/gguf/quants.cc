// Type dispatch for quantize/dequantize and the dequantizers.
#include <cstring>

#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/half.h"
#include "quants_internal.h"
#include "quants_iq.h"

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

void QuantizeF32(const float* x, float* y, int64_t n) {
  std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}
void QuantizeF16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = FloatToHalf(x[i]);
}
void QuantizeBF16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = FloatToBfloat16(x[i]);
}
void DequantizeF32(const float* x, float* y, int64_t n) {
  std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}
void DequantizeF16(const uint16_t* x, float* y, int64_t n) {
  HalfToFloatSpan(x, y, static_cast<size_t>(n));
}
void DequantizeBF16(const uint16_t* x, float* y, int64_t n) {
  Bfloat16ToFloatSpan(x, y, static_cast<size_t>(n));
}

// Type-erased row kernels over a typed block (or element) pointer.
template <class Block, void (*kFn)(const float*, Block*, int64_t)>
void QuantizeAs(const float* src, void* dst, int64_t n) {
  kFn(src, static_cast<Block*>(dst), n);
}
template <class Block, void (*kFn)(const Block*, float*, int64_t)>
void DequantizeAs(const void* src, float* dst, int64_t n) {
  kFn(static_cast<const Block*>(src), dst, n);
}

// One table entry: the functions must take `Block`, the struct whose sizeof
// and kElements give the type's geometry (TypeInfo).
template <class Block, void (*kRef)(const float*, Block*, int64_t),
          void (*kAvx2)(const float*, Block*, int64_t),
          void (*kDequantize)(const Block*, float*, int64_t)>
constexpr GgmlKernels Kernels(GgmlType type) {
  GgmlKernels k{type, &QuantizeAs<Block, kRef>, nullptr, &DequantizeAs<Block, kDequantize>};
  if constexpr (kAvx2 != nullptr) k.quantize_avx2 = &QuantizeAs<Block, kAvx2>;
  return k;
}

using internal::QuantizeIQ4_NL_avx2;
using internal::QuantizeQ2_K_avx2;
using internal::QuantizeQ3_K_avx2;
using internal::QuantizeQ4_0_avx2;
using internal::QuantizeQ4_K_avx2;
using internal::QuantizeQ5_K_avx2;
using internal::QuantizeQ6_K_avx2;
using internal::QuantizeQ8_0_avx2;

constexpr GgmlKernels kKernels[] = {
    Kernels<float, QuantizeF32, nullptr, DequantizeF32>(GgmlType::kF32),
    Kernels<uint16_t, QuantizeF16, nullptr, DequantizeF16>(GgmlType::kF16),
    Kernels<uint16_t, QuantizeBF16, nullptr, DequantizeBF16>(GgmlType::kBF16),
    Kernels<BlockQ8_0, QuantizeQ8_0_ref, QuantizeQ8_0_avx2, DequantizeQ8_0>(GgmlType::kQ8_0),
    Kernels<BlockQ4_0, QuantizeQ4_0_ref, QuantizeQ4_0_avx2, DequantizeLegacy<4, false, BlockQ4_0>>(
        GgmlType::kQ4_0),
    Kernels<BlockQ4_1, QuantizeQ4_1_ref, nullptr, DequantizeLegacy<4, true, BlockQ4_1>>(
        GgmlType::kQ4_1),
    Kernels<BlockQ5_0, QuantizeQ5_0_ref, nullptr, DequantizeLegacy<5, false, BlockQ5_0>>(
        GgmlType::kQ5_0),
    Kernels<BlockQ5_1, QuantizeQ5_1_ref, nullptr, DequantizeLegacy<5, true, BlockQ5_1>>(
        GgmlType::kQ5_1),
    Kernels<BlockQ2_K, QuantizeQ2_K_ref, QuantizeQ2_K_avx2, DequantizeQ2_K>(GgmlType::kQ2_K),
    Kernels<BlockQ3_K, QuantizeQ3_K_ref, QuantizeQ3_K_avx2, DequantizeQ3_K>(GgmlType::kQ3_K),
    Kernels<BlockQ4_K, QuantizeQ4_K_ref, QuantizeQ4_K_avx2, DequantizeQkMin<4, BlockQ4_K>>(
        GgmlType::kQ4_K),
    Kernels<BlockQ5_K, QuantizeQ5_K_ref, QuantizeQ5_K_avx2, DequantizeQkMin<5, BlockQ5_K>>(
        GgmlType::kQ5_K),
    Kernels<BlockQ6_K, QuantizeQ6_K_ref, QuantizeQ6_K_avx2, DequantizeQ6_K>(GgmlType::kQ6_K),
    Kernels<BlockIQ4_NL, QuantizeIQ4_NL_ref, QuantizeIQ4_NL_avx2, DequantizeIQ4_NL>(
        GgmlType::kIQ4_NL),
    // Lattice-grid types (quants_iq1.cc, quants_iq2.cc, quants_iq3.cc).
    Kernels<BlockIQ2_XXS, QuantizeIQ2_XXS_ref, nullptr, DequantizeIQ2_XXS>(GgmlType::kIQ2_XXS),
    Kernels<BlockIQ2_XS, QuantizeIQ2_XS_ref, nullptr, DequantizeIQ2_XS>(GgmlType::kIQ2_XS),
    Kernels<BlockIQ2_S, QuantizeIQ2_S_ref, nullptr, DequantizeIQ2_S>(GgmlType::kIQ2_S),
    Kernels<BlockIQ3_XXS, QuantizeIQ3_XXS_ref, nullptr, DequantizeIQ3_XXS>(GgmlType::kIQ3_XXS),
    Kernels<BlockIQ3_S, QuantizeIQ3_S_ref, nullptr, DequantizeIQ3_S>(GgmlType::kIQ3_S),
    Kernels<BlockIQ1_S, QuantizeIQ1_S_ref, nullptr, DequantizeIQ1_S>(GgmlType::kIQ1_S),
    Kernels<BlockIQ1_M, QuantizeIQ1_M_ref, nullptr, DequantizeIQ1_M>(GgmlType::kIQ1_M),
};

}  // namespace

absl::Span<const GgmlKernels> AllGgmlKernels() { return kKernels; }

const GgmlKernels* FindGgmlKernels(GgmlType type) {
  for (const GgmlKernels& k : kKernels) {
    if (k.type == type) return &k;
  }
  return nullptr;
}

QuantizeRowFn QuantizeRowFor(const GgmlKernels& kernels, CpuLevel level) {
  if (level >= CpuLevel::kAvx2 && kernels.quantize_avx2 != nullptr) return kernels.quantize_avx2;
  return kernels.quantize_ref;
}

bool CanQuantize(GgmlType type) { return FindGgmlKernels(type) != nullptr; }

bool CanDequantize(GgmlType type) { return CanQuantize(type); }

void QuantizeRow_ref(GgmlType type, const float* src, void* dst, int64_t n) {
  const GgmlKernels* k = FindGgmlKernels(type);
  if (k != nullptr) k->quantize_ref(src, dst, n);  // else: REQUIRES CanQuantize(type)
}

void QuantizeRow(GgmlType type, const float* src, void* dst, int64_t n) {
  const GgmlKernels* k = FindGgmlKernels(type);
  if (k != nullptr) QuantizeRowFor(*k, ActiveCpuLevel())(src, dst, n);
}

void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n) {
  const GgmlKernels* k = FindGgmlKernels(type);
  if (k != nullptr) k->dequantize(src, dst, n);  // else: REQUIRES CanDequantize(type)
}

}  // namespace quantd::core::gguf
