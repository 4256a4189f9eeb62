// Type dispatch for quantize/dequantize and the dequantizers.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/finite.h"
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

void DequantizeIQ4_XS(const BlockIQ4_XS* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      const int ls =
          ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((x[i].scales_h >> 2 * ib) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0xF]);
        y[j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
      }
      y += 32;
      qs += 16;
    }
  }
}

// One base-3 digit of a TQ1_0 byte: the byte holds a fixed-point fraction
// of 3^5 (3^4 for qh), so digit k is the integer part of 3 * (q * 3^k mod 256) / 256.
inline float TernaryDigit(uint8_t q, int pow3) {
  const uint8_t s = static_cast<uint8_t>(q * pow3);
  return static_cast<float>(((static_cast<uint16_t>(s) * 3) >> 8) - 1);
}

void DequantizeTQ1_0(const BlockTQ1_0* x, float* y, int64_t n) {
  constexpr int kPow3[5] = {1, 3, 9, 27, 81};
  constexpr int kQs = sizeof(x->qs);
  constexpr int kQs32 = kQs - kQs % 32;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    for (int j = 0; j < kQs32; j += 32) {
      for (int p = 0; p < 5; ++p) {
        for (int m = 0; m < 32; ++m) *y++ = TernaryDigit(x[i].qs[j + m], kPow3[p]) * d;
      }
    }
    for (int j = kQs32; j < kQs; j += 16) {
      for (int p = 0; p < 5; ++p) {
        for (int m = 0; m < 16; ++m) *y++ = TernaryDigit(x[i].qs[j + m], kPow3[p]) * d;
      }
    }
    for (int p = 0; p < 4; ++p) {
      for (int j = 0; j < static_cast<int>(sizeof(x->qh)); ++j) {
        *y++ = TernaryDigit(x[i].qh[j], kPow3[p]) * d;
      }
    }
  }
}

void DequantizeTQ2_0(const BlockTQ2_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    for (int j = 0; j < static_cast<int>(sizeof(x->qs)); j += 32) {
      for (int l = 0; l < 4; ++l) {
        for (int m = 0; m < 32; ++m) {
          const int q = (x[i].qs[j + m] >> (2 * l)) & 3;
          *y++ = static_cast<float>(q - 1) * d;
        }
      }
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
template <class Block, void (*kFn)(const float*, Block*, int64_t, const float*)>
void QuantizeWeightedAs(const float* src, void* dst, int64_t n_per_row, const float* qw) {
  kFn(src, static_cast<Block*>(dst), n_per_row, qw);
}
template <class Block, void (*kFn)(const Block*, float*, int64_t)>
void DequantizeAs(const void* src, float* dst, int64_t n) {
  kFn(static_cast<const Block*>(src), dst, n);
}

// One table entry: the functions must take `Block`, the struct whose sizeof
// and kElements give the type's geometry (TypeInfo). kWeighted: the
// quantizer used with an importance matrix (null: the type ignores one).
template <class Block, void (*kRef)(const float*, Block*, int64_t),
          void (*kAvx2)(const float*, Block*, int64_t),
          void (*kDequantize)(const Block*, float*, int64_t),
          void (*kWeighted)(const float*, Block*, int64_t, const float*) = nullptr,
          void (*kWeightedAvx2)(const float*, Block*, int64_t, const float*) = nullptr>
constexpr GgmlKernels Kernels(GgmlType type) {
  GgmlKernels k{type, &QuantizeAs<Block, kRef>, nullptr, &DequantizeAs<Block, kDequantize>};
  if constexpr (kAvx2 != nullptr) k.quantize_avx2 = &QuantizeAs<Block, kAvx2>;
  if constexpr (kWeighted != nullptr) k.quantize_weighted = &QuantizeWeightedAs<Block, kWeighted>;
  if constexpr (kWeightedAvx2 != nullptr) {
    k.quantize_weighted_avx2 = &QuantizeWeightedAs<Block, kWeightedAvx2>;
  }
  return k;
}

// A table entry with an AVX-512 quantizer.
template <class Block, void (*kAvx512)(const float*, Block*, int64_t)>
constexpr GgmlKernels WithAvx512(GgmlKernels k) {
  k.quantize_avx512 = &QuantizeAs<Block, kAvx512>;
  return k;
}

template <class Block, int64_t (*kFn)(const float*, Block*, int64_t, QualitySums*)>
int64_t CheckedAs(const float* src, void* dst, int64_t n, QualitySums* q) {
  return kFn(src, static_cast<Block*>(dst), n, q);
}

// A table entry with one-pass QuantizeRowChecked kernels (AVX2, and AVX-512
// when given).
template <class Block, int64_t (*kAvx2)(const float*, Block*, int64_t, QualitySums*),
          int64_t (*kAvx512)(const float*, Block*, int64_t, QualitySums*) = nullptr>
constexpr GgmlKernels WithChecked(GgmlKernels k) {
  k.checked_avx2 = &CheckedAs<Block, kAvx2>;
  if constexpr (kAvx512 != nullptr) k.checked_avx512 = &CheckedAs<Block, kAvx512>;
  return k;
}

using internal::QuantizeBF16_avx2;
using internal::QuantizeF16_avx2;
using internal::QuantizeIQ4_NL_avx2;
using internal::QuantizeIQ4_NL_weighted_avx2;
using internal::QuantizeIQ4_XS_avx2;
using internal::QuantizeIQ4_XS_weighted_avx2;
using internal::QuantizeQ2_K_avx2;
using internal::QuantizeQ3_K_avx2;
using internal::QuantizeQ4_0_avx2;
using internal::QuantizeQ4_1_avx2;
using internal::QuantizeQ4_K_avx2;
using internal::QuantizeQ4_K_weighted_avx2;
using internal::QuantizeQ5_0_avx2;
using internal::QuantizeQ5_1_avx2;
using internal::QuantizeQ5_K_avx2;
using internal::QuantizeQ5_K_weighted_avx2;
using internal::QuantizeQ6_K_avx2;
using internal::QuantizeQ8_0_avx2;

constexpr GgmlKernels kKernels[] = {
    Kernels<float, QuantizeF32, nullptr, DequantizeF32>(GgmlType::kF32),
    Kernels<uint16_t, QuantizeF16, QuantizeF16_avx2, DequantizeF16>(GgmlType::kF16),
    Kernels<uint16_t, QuantizeBF16, QuantizeBF16_avx2, DequantizeBF16>(GgmlType::kBF16),
    WithChecked<BlockQ8_0, internal::QuantizeQ8_0Checked_avx2>(
        Kernels<BlockQ8_0, QuantizeQ8_0_ref, QuantizeQ8_0_avx2, DequantizeQ8_0>(GgmlType::kQ8_0)),
    WithChecked<BlockQ4_0, internal::QuantizeQ4_0Checked_avx2>(
        Kernels<BlockQ4_0, QuantizeQ4_0_ref, QuantizeQ4_0_avx2,
                DequantizeLegacy<4, false, BlockQ4_0>, QuantizeQ4_0_weighted>(GgmlType::kQ4_0)),
    WithChecked<BlockQ4_1, internal::QuantizeQ4_1Checked_avx2>(
        Kernels<BlockQ4_1, QuantizeQ4_1_ref, QuantizeQ4_1_avx2,
                DequantizeLegacy<4, true, BlockQ4_1>, QuantizeQ4_1_weighted>(GgmlType::kQ4_1)),
    WithChecked<BlockQ5_0, internal::QuantizeQ5_0Checked_avx2>(
        Kernels<BlockQ5_0, QuantizeQ5_0_ref, QuantizeQ5_0_avx2,
                DequantizeLegacy<5, false, BlockQ5_0>, QuantizeQ5_0_weighted>(GgmlType::kQ5_0)),
    WithChecked<BlockQ5_1, internal::QuantizeQ5_1Checked_avx2>(
        Kernels<BlockQ5_1, QuantizeQ5_1_ref, QuantizeQ5_1_avx2,
                DequantizeLegacy<5, true, BlockQ5_1>, QuantizeQ5_1_weighted>(GgmlType::kQ5_1)),
    Kernels<BlockQ2_K, QuantizeQ2_K_ref, QuantizeQ2_K_avx2, DequantizeQ2_K, QuantizeQ2_K_weighted>(
        GgmlType::kQ2_K),
    Kernels<BlockQ3_K, QuantizeQ3_K_ref, QuantizeQ3_K_avx2, DequantizeQ3_K, QuantizeQ3_K_weighted>(
        GgmlType::kQ3_K),
    Kernels<BlockQ4_K, QuantizeQ4_K_ref, QuantizeQ4_K_avx2, DequantizeQkMin<4, BlockQ4_K>,
            QuantizeQ4_K_weighted, QuantizeQ4_K_weighted_avx2>(GgmlType::kQ4_K),
    Kernels<BlockQ5_K, QuantizeQ5_K_ref, QuantizeQ5_K_avx2, DequantizeQkMin<5, BlockQ5_K>,
            QuantizeQ5_K_weighted, QuantizeQ5_K_weighted_avx2>(GgmlType::kQ5_K),
    WithChecked<BlockQ6_K, internal::QuantizeQ6_KChecked_avx2,
                internal::QuantizeQ6_KChecked_avx512>(
        WithAvx512<BlockQ6_K, internal::QuantizeQ6_K_avx512>(
            Kernels<BlockQ6_K, QuantizeQ6_K_ref, QuantizeQ6_K_avx2, DequantizeQ6_K,
                    QuantizeQ6_K_weighted>(GgmlType::kQ6_K))),
    Kernels<BlockIQ4_NL, QuantizeIQ4_NL_ref, QuantizeIQ4_NL_avx2, DequantizeIQ4_NL,
            QuantizeIQ4_NL_weighted, QuantizeIQ4_NL_weighted_avx2>(GgmlType::kIQ4_NL),
    Kernels<BlockIQ4_XS, QuantizeIQ4_XS_ref, QuantizeIQ4_XS_avx2, DequantizeIQ4_XS,
            QuantizeIQ4_XS_weighted, QuantizeIQ4_XS_weighted_avx2>(GgmlType::kIQ4_XS),
    Kernels<BlockTQ1_0, QuantizeTQ1_0_ref, nullptr, DequantizeTQ1_0>(GgmlType::kTQ1_0),
    Kernels<BlockTQ2_0, QuantizeTQ2_0_ref, nullptr, DequantizeTQ2_0>(GgmlType::kTQ2_0),
    // Lattice-grid types (quants_iq1.cc, quants_iq2.cc, quants_iq3.cc).
    Kernels<BlockIQ2_XXS, QuantizeIQ2_XXS_ref, nullptr, DequantizeIQ2_XXS,
            QuantizeIQ2_XXS_weighted>(GgmlType::kIQ2_XXS),
    Kernels<BlockIQ2_XS, QuantizeIQ2_XS_ref, nullptr, DequantizeIQ2_XS, QuantizeIQ2_XS_weighted>(
        GgmlType::kIQ2_XS),
    Kernels<BlockIQ2_S, QuantizeIQ2_S_ref, nullptr, DequantizeIQ2_S, QuantizeIQ2_S_weighted>(
        GgmlType::kIQ2_S),
    Kernels<BlockIQ3_XXS, QuantizeIQ3_XXS_ref, nullptr, DequantizeIQ3_XXS,
            QuantizeIQ3_XXS_weighted>(GgmlType::kIQ3_XXS),
    Kernels<BlockIQ3_S, QuantizeIQ3_S_ref, nullptr, DequantizeIQ3_S, QuantizeIQ3_S_weighted>(
        GgmlType::kIQ3_S),
    Kernels<BlockIQ1_S, QuantizeIQ1_S_ref, nullptr, DequantizeIQ1_S, QuantizeIQ1_S_weighted>(
        GgmlType::kIQ1_S),
    Kernels<BlockIQ1_M, QuantizeIQ1_M_ref, nullptr, DequantizeIQ1_M, QuantizeIQ1_M_weighted>(
        GgmlType::kIQ1_M),
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
  if (level >= CpuLevel::kAvx512 && kernels.quantize_avx512 != nullptr) {
    return kernels.quantize_avx512;
  }
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

namespace {
void QuantizeRowsWith(const GgmlKernels& k, QuantizeRowFn plain, QuantizeRowWeightedFn weighted,
                      const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                      const float* quant_weights) {
  if (quant_weights == nullptr || weighted == nullptr) {
    plain(src, dst, nrows * n_per_row);
    return;
  }
  const int64_t row_bytes = RowBytes(k.type, n_per_row);
  uint8_t* out = static_cast<uint8_t*>(dst);
  for (int64_t r = 0; r < nrows; ++r) {
    weighted(src + r * n_per_row, out + r * row_bytes, n_per_row, quant_weights);
  }
}
}  // namespace

void QuantizeRows(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                  const float* quant_weights) {
  const GgmlKernels* k = FindGgmlKernels(type);
  if (k == nullptr) return;  // REQUIRES CanQuantize(type)
  const bool avx2 = ActiveCpuLevel() >= CpuLevel::kAvx2 && k->quantize_weighted_avx2 != nullptr;
  QuantizeRowsWith(*k, QuantizeRowFor(*k, ActiveCpuLevel()),
                   avx2 ? k->quantize_weighted_avx2 : k->quantize_weighted, src, dst, nrows,
                   n_per_row, quant_weights);
}

void QuantizeRows_ref(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                      const float* quant_weights) {
  const GgmlKernels* k = FindGgmlKernels(type);
  if (k == nullptr) return;  // REQUIRES CanQuantize(type)
  QuantizeRowsWith(*k, k->quantize_ref, k->quantize_weighted, src, dst, nrows, n_per_row,
                   quant_weights);
}

bool UsesImportance(GgmlType type) {
  const GgmlKernels* k = FindGgmlKernels(type);
  return k != nullptr && k->quantize_weighted != nullptr;
}

void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n) {
  const GgmlKernels* k = FindGgmlKernels(type);
  if (k != nullptr) k->dequantize(src, dst, n);  // else: REQUIRES CanDequantize(type)
}

void AddQualitySums(const float* x, const float* y, int64_t n, QualitySums* q) {
  constexpr int kLanes = 16;
  constexpr int64_t kSpan = kQualitySpan;
  for (int64_t i0 = 0; i0 < n; i0 += kSpan) {
    const int64_t end = std::min(n, i0 + kSpan);
    float w2[kLanes] = {}, e2[kLanes] = {}, emax[kLanes] = {};
    int64_t i = i0;
    for (; i + kLanes <= end; i += kLanes) {
      for (int k = 0; k < kLanes; ++k) {
        const float w = x[i + k];
        const float e = w - y[i + k];
        w2[k] += w * w;
        e2[k] += e * e;
        const float ae = std::fabs(e);
        emax[k] = emax[k] > ae ? emax[k] : ae;
      }
    }
    for (; i < end; ++i) {
      const float e = x[i] - y[i];
      w2[0] += x[i] * x[i];
      e2[0] += e * e;
      emax[0] = std::max(emax[0], std::fabs(e));
    }
    for (int k = 0; k < kLanes; ++k) {
      q->sum_w2 += w2[k];
      q->sum_e2 += e2[k];
      q->max_abs = std::max(q->max_abs, static_cast<double>(emax[k]));
    }
  }
}

int64_t QuantizeRowChecked(GgmlType type, const float* x, void* y, int64_t n, QualitySums* q,
                           float* scratch) {
  if (const GgmlKernels* k = FindGgmlKernels(type); k != nullptr) {
    const CpuLevel level = ActiveCpuLevel();
    if (level >= CpuLevel::kAvx512 && k->checked_avx512 != nullptr) {
      return k->checked_avx512(x, y, n, q);
    }
    if (level >= CpuLevel::kAvx2 && k->checked_avx2 != nullptr) return k->checked_avx2(x, y, n, q);
  }
  const GgmlTypeInfo& info = TypeInfo(type);
  if (info.quantized) {
    if (const int64_t bad = FirstNonFiniteF32(x, n); bad >= 0) return bad;
  }
  QuantizeRow(type, x, y, n);
  if (q != nullptr) {
    // One span at a time, so the dequantized values stay in L1 (the spans
    // are AddQualitySums' own, so the sums are those of one call).
    const uint8_t* out = static_cast<const uint8_t*>(y);
    for (int64_t i0 = 0; i0 < n; i0 += kQualitySpan) {
      const int64_t len = std::min(kQualitySpan, n - i0);
      DequantizeRow(type, out + i0 / info.block_size * info.type_size, scratch, len);
      AddQualitySums(x + i0, scratch, len, q);
    }
  }
  return -1;
}

}  // namespace quantd::core::gguf
