// Helpers shared by the reference and the vectorised quantizers, and the
// declarations of the SIMD variants. Internal to core/gguf; not installed.
// Pure functions, thread-safe.
#ifndef QUANTD_CORE_GGUF_QUANTS_INTERNAL_H_
#define QUANTD_CORE_GGUF_QUANTS_INTERNAL_H_

#include <bit>
#include <cstdint>
#include <cstring>

#include "quantd/core/gguf/quants.h"

namespace quantd::core::gguf {

inline constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, for |f| <= 2^22 (adds 1.5 * 2^23 so the
// FPU's rounding does the work; ggml's nearest_int).
inline int NearestInt(float f) {
  const float v = f + 12582912.0f;
  const int32_t i = std::bit_cast<int32_t>(v);
  return (i & 0x007fffff) - 0x00400000;
}

inline int ClampInt(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// The IQ4_NL grid (kvalues_iq4nl).
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// Index of the grid value nearest to x; ties go to the upper value.
inline int BestIndexIq4nl(float x) {
  const int8_t* val = kIq4nlValues;
  if (x <= static_cast<float>(val[0])) return 0;
  if (x >= static_cast<float>(val[15])) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < static_cast<float>(val[mav])) {
      mu = mav;
    } else {
      ml = mav;
    }
  }
  return x - static_cast<float>(val[mu - 1]) < static_cast<float>(val[mu]) - x ? mu - 1 : mu;
}

// 6-bit scale and min of sub-block j of a Q4_K/Q5_K block.
inline void GetScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Affine (scale, min) levels in [0, nmax] under weights, searched over
// nstep + 1 candidate scales (rmin + rdelta * is + nmax) / (max - min),
// least squares per candidate; Laux is scratch for n levels. Returns the
// scale; *the_min receives -min (min <= 0). ggml has two versions that
// differ only in the block they give up on (all levels 0): make_qkx2_quants
// when max == min, MakeQkx2Quants; make_qkx3_quants, used with importance
// weights and always with squared errors, also when max < min (every value
// negative), MakeQkx3Quants.
float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                     float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                     bool use_mad);
float MakeQkx3Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                     float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep);

// Packs the 32 levels of a legacy block (Q4_0, Q4_1: 4 bits; Q5_0, Q5_1: 5
// bits, levels as any integer type whose low bits hold them) into y->qs
// (element j in the low nibble of byte j, element j + 16 in its high
// nibble) and, for 5 bits, the fifth bits into y->qh (bit j of element j).
template <int kBits, class Block, class Level>
inline void PackLegacyLevels(const Level* L, Block* y) {
  static_assert(kBits == 4 || kBits == 5);
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const uint32_t l0 = static_cast<uint8_t>(L[j]);
    const uint32_t l1 = static_cast<uint8_t>(L[j + kQK / 2]);
    y->qs[j] = static_cast<uint8_t>((l0 & 0x0F) | ((l1 & 0x0F) << 4));
    if constexpr (kBits == 5) {
      qh |= ((l0 & 0x10u) >> 4) << j;
      qh |= ((l1 & 0x10u) >> 4) << (j + kQK / 2);
    }
  }
  if constexpr (kBits == 5) std::memcpy(y->qh, &qh, sizeof(qh));
}

// L[i] = clamp(NearestInt((x[i] + dm) / d), lo, hi) + bias for i < n: the
// final rounding step of every K-quant (dm = 0 for the symmetric ones; x + 0
// is x for every value that matters, so the result is the same).
using SpanQuantFn = void (*)(const float* x, float dm, float d, int lo, int hi, int bias,
                             uint8_t* L, int n);
void QuantizeSpan_ref(const float* x, float dm, float d, int lo, int hi, int bias, uint8_t* L,
                      int n);

// From sub-block scales/mins (and the search's L, kept where a sub-block's
// quantized scale is zero) to a packed super-block. x: the block's 256 floats.
// `span` does the per-value rounding (scalar or AVX2; same results).
void FinishQ2_K(const float* x, const float* scales, const float* mins, uint8_t* L, BlockQ2_K* y,
                SpanQuantFn span = QuantizeSpan_ref);
void FinishQ3_K(const float* x, const float* scales, int8_t* L, BlockQ3_K* y,
                SpanQuantFn span = QuantizeSpan_ref);
template <int kBits, class Block>
void FinishQkMin(const float* x, const float* scales, const float* mins, uint8_t* L, Block* y,
                 SpanQuantFn span = QuantizeSpan_ref);
void FinishQ6_K(const float* x, const float* scales, int8_t* L, BlockQ6_K* y,
                SpanQuantFn span = QuantizeSpan_ref);
// FinishQ6_K's two ends. SetQ6_KScales: from the 16 sub-block scales to the
// super-block's d and 8-bit scales; false (and y all zero, d = 0) when every
// scale is below kGroupMaxEps, and then the block is final. PackQ6_K: the
// 256 levels L (0..63) into ql/qh.
bool SetQ6_KScales(const float* scales, BlockQ6_K* y);
void PackQ6_K(const int8_t* L, BlockQ6_K* y);

// IQ4_XS from its 8 block scales (the search's result, 0 for all-zero
// blocks): the super-block scale, 6-bit block scales and the levels, as
// quantize_row_iq4_nl_impl's multi-block branch. x: the 256 values.
void FinishIQ4_XS(const float* x, const float* scales, BlockIQ4_XS* y);
// The weights the IQ4_NL / IQ4_XS search uses with an importance matrix,
// for one block of n values (32 for IQ4_NL, 256 for IQ4_XS) and its n column
// weights qw: weights[j] = qw[j] * sqrt(sigma2 + x[j]^2), sigma2 = 2 * the
// block's mean square (the reference's order).
void Iq4Importance(const float* x, const float* qw, int n, float* weights);

// Importance weighting of one Q4_K/Q5_K super-block (256 values, its 256
// column weights qw): weights[j] = qw[j] * sqrt(sigma2 + x[j]^2) with
// sigma2 = 2 * mean square, and sw[s] the sum over sub-block s (8 of 32).
void QkMinImportance(const float* x, const float* qw, float* weights, float* sw);
// From the weighted search's sub-block scales/mins (and L) to a packed
// Q4_K/Q5_K super-block: 6-bit scales and mins by the weighted search over
// sw, then the levels (quantize_row_q4_K_impl / q5_K_impl's second half).
template <int kBits, class Block>
void FinishQkMinWeighted(const float* x, const float* scales, const float* mins, const float* sw,
                         uint8_t* L, Block* y, SpanQuantFn span = QuantizeSpan_ref);

namespace internal {
// AVX2 variants (quants_avx2.cc); same bytes as the _ref functions.
// REQUIRES: the CPU supports AVX2.
void QuantizeQ8_0_avx2(const float* x, BlockQ8_0* y, int64_t n);
void QuantizeQ4_0_avx2(const float* x, BlockQ4_0* y, int64_t n);
// One pass of QuantizeRowChecked for Q8_0 / Q4_0 / Q6_K (q null: no measuring):
// the same bytes, sums and result.
int64_t QuantizeQ8_0Checked_avx2(const float* x, BlockQ8_0* y, int64_t n, QualitySums* q);
int64_t QuantizeQ4_0Checked_avx2(const float* x, BlockQ4_0* y, int64_t n, QualitySums* q);
int64_t QuantizeQ6_KChecked_avx2(const float* x, BlockQ6_K* y, int64_t n, QualitySums* q);
// The same for the other legacy types, and their QuantizeRow variants
// (the reference for blocks holding NaN or Inf).
int64_t QuantizeQ5_0Checked_avx2(const float* x, BlockQ5_0* y, int64_t n, QualitySums* q);
int64_t QuantizeQ4_1Checked_avx2(const float* x, BlockQ4_1* y, int64_t n, QualitySums* q);
int64_t QuantizeQ5_1Checked_avx2(const float* x, BlockQ5_1* y, int64_t n, QualitySums* q);
void QuantizeQ5_0_avx2(const float* x, BlockQ5_0* y, int64_t n);
void QuantizeQ4_1_avx2(const float* x, BlockQ4_1* y, int64_t n);
void QuantizeQ5_1_avx2(const float* x, BlockQ5_1* y, int64_t n);
// F16 / BF16 storage as QuantizeF16 / QuantizeBF16 (F16C for F16 where the
// CPU has it).
void QuantizeF16_avx2(const float* x, uint16_t* y, int64_t n);
void QuantizeBF16_avx2(const float* x, uint16_t* y, int64_t n);
void QuantizeIQ4_NL_avx2(const float* x, BlockIQ4_NL* y, int64_t n);
void QuantizeIQ4_XS_avx2(const float* x, BlockIQ4_XS* y, int64_t n);
// Weighted row quantizers (QuantizeRowWeightedFn), same bytes as the
// *_weighted references.
void QuantizeQ4_K_weighted_avx2(const float* x, BlockQ4_K* y, int64_t n_per_row, const float* qw);
void QuantizeQ5_K_weighted_avx2(const float* x, BlockQ5_K* y, int64_t n_per_row, const float* qw);
void QuantizeIQ4_XS_weighted_avx2(const float* x, BlockIQ4_XS* y, int64_t n_per_row,
                                  const float* qw);
void QuantizeIQ4_NL_weighted_avx2(const float* x, BlockIQ4_NL* y, int64_t n_per_row,
                                  const float* qw);
void QuantizeQ4_K_avx2(const float* x, BlockQ4_K* y, int64_t n);
void QuantizeQ5_K_avx2(const float* x, BlockQ5_K* y, int64_t n);
void QuantizeQ6_K_avx2(const float* x, BlockQ6_K* y, int64_t n);
void QuantizeQ3_K_avx2(const float* x, BlockQ3_K* y, int64_t n);
void QuantizeQ2_K_avx2(const float* x, BlockQ2_K* y, int64_t n);
// PackQ6_K with AVX2 (also used by the AVX-512 kernel).
void PackQ6_K_avx2(const int8_t* L, BlockQ6_K* y);

// AVX-512 variants (quants_avx512.cc); same bytes (and for the Checked one
// the same sums and result) as the _ref / AVX2 functions.
// REQUIRES: the CPU supports CpuLevel::kAvx512.
void QuantizeQ6_K_avx512(const float* x, BlockQ6_K* y, int64_t n);
int64_t QuantizeQ6_KChecked_avx512(const float* x, BlockQ6_K* y, int64_t n, QualitySums* q);
}  // namespace internal

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_QUANTS_INTERNAL_H_
