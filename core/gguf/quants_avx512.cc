// AVX-512 Q6_K kernels. The scale search is the AVX2 one (quants_avx2.cc:
// one sub-block per lane, each lane performing exactly the reference's
// sequence of fp32 operations) with the 16 sub-blocks of a super-block in
// one ZMM register instead of two YMM ones, which halves the instructions
// of the 19-candidate search. The levels, the packing and the quality sums
// run on the values in their own order (16 values of a sub-block per
// register), so the search's levels are never transposed back.
//
// Every function here is compiled for AVX-512 F/BW/DQ/VL (target attribute)
// and is only called at CpuLevel::kAvx512 (QuantizeRow through the kernel
// table, QuantizeRowChecked).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "quantd/core/base/half.h"
#include "quants_internal.h"

// GCC 12 warns inside its own AVX-512 headers (the undefined source of
// _mm512_abs_ps and the reductions); nothing here reads an uninitialized value.
#if !defined(__clang__)  // a GCC-only warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// The 64-byte vector helpers are always inlined; their (non-)ABI does not matter.
#pragma GCC diagnostic ignored "-Wpsabi"

#define QUANTD_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512dq,avx512vl")))
#define QUANTD_AVX512_INLINE \
  __attribute__((target("avx2,avx512f,avx512bw,avx512dq,avx512vl"), always_inline)) inline
#define QUANTD_AVX512_LAMBDA \
  __attribute__((target("avx2,avx512f,avx512bw,avx512dq,avx512vl"), always_inline))

namespace quantd::core::gguf::internal {
namespace {

constexpr int kSub = 16;   // values per sub-block, and sub-blocks per super-block
constexpr int kNmax = 32;  // make_qx_quants' nmax for Q6_K: levels -32..31

// Round to nearest, ties to even, as a float, for |v| <= 2^22 (the
// reference's NearestInt, converted back exactly). NaN stays NaN.
QUANTD_AVX512_INLINE __m512 RoundV(__m512 v) {
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  return _mm512_sub_ps(_mm512_add_ps(v, magic), magic);
}

// NearestInt (quants_internal.h) on 16 lanes: the same integer for every
// input, including |f| > 2^22 and non-finite f.
QUANTD_AVX512_INLINE __m512i NearestIntV(__m512 f) {
  const __m512i i = _mm512_castps_si512(_mm512_add_ps(f, _mm512_set1_ps(12582912.0f)));
  return _mm512_sub_epi32(_mm512_and_si512(i, _mm512_set1_epi32(0x007fffff)),
                          _mm512_set1_epi32(0x00400000));
}

// The stored level: ClampInt(l, -32, 31) + 32.
QUANTD_AVX512_INLINE __m512i StoredLevel(__m512i l) {
  const __m512i c = _mm512_min_epi32(_mm512_max_epi32(l, _mm512_set1_epi32(-kNmax)),
                                     _mm512_set1_epi32(kNmax - 1));
  return _mm512_add_epi32(c, _mm512_set1_epi32(kNmax));
}

// Which clamps of ClampInt(NearestInt(iscale * x), -32, 31) a candidate
// needs. iscale = num / max with |max| = max |x|, so |iscale * x| <= |num|
// (1 + 2^-24)^2 < |num| (1 + 2^-22): below 31.5 the level is in -31..31 (no
// clamp acts), below 32.5 in -32..32 (only the upper one acts). Leaving out a
// clamp that cannot act changes no value. (A lane whose max is 0 gets NaN or
// infinite products: an all-zero sub-block, whose result is replaced by 0.)
enum class Clamp { kNone, kUpper, kBoth };
constexpr Clamp ClampFor(float abs_num) {
  constexpr float kSlack = 1.0f + 1.0f / static_cast<float>(1 << 22);
  return abs_num * kSlack < 31.5f   ? Clamp::kNone
         : abs_num * kSlack < 32.5f ? Clamp::kUpper
                                    : Clamp::kBoth;
}

// The levels of one candidate inverse scale as floats, clamped as `kClamp`.
template <Clamp kClamp>
QUANTD_AVX512_INLINE __m512 LevelsV(__m512 iscale, __m512 x) {
  __m512 fl = RoundV(_mm512_mul_ps(iscale, x));
  if constexpr (kClamp != Clamp::kNone) fl = _mm512_min_ps(fl, _mm512_set1_ps(kNmax - 1));
  if constexpr (kClamp == Clamp::kBoth) fl = _mm512_max_ps(fl, _mm512_set1_ps(-kNmax));
  return fl;
}

// The reference's sums of one candidate, sumlx = sum of (w*x)*l and
// suml2 = sum of (w*l)*l in value order, for two candidates side by side
// (two independent chains of additions).
template <Clamp kClamp>
QUANTD_AVX512_INLINE void CandidateSums2(__m512 iscale_a, __m512 iscale_b, const __m512* X,
                                         const __m512* W, const __m512* WX, __m512* sumlx,
                                         __m512* suml2) {
  __m512 slx_a = _mm512_setzero_ps(), sl2_a = _mm512_setzero_ps();
  __m512 slx_b = _mm512_setzero_ps(), sl2_b = _mm512_setzero_ps();
  for (int i = 0; i < kSub; ++i) {
    const __m512 fa = LevelsV<kClamp>(iscale_a, X[i]);
    const __m512 fb = LevelsV<kClamp>(iscale_b, X[i]);
    slx_a = _mm512_add_ps(slx_a, _mm512_mul_ps(WX[i], fa));
    slx_b = _mm512_add_ps(slx_b, _mm512_mul_ps(WX[i], fb));
    sl2_a = _mm512_add_ps(sl2_a, _mm512_mul_ps(_mm512_mul_ps(W[i], fa), fa));
    sl2_b = _mm512_add_ps(sl2_b, _mm512_mul_ps(_mm512_mul_ps(W[i], fb), fb));
  }
  sumlx[0] = slx_a;
  sumlx[1] = slx_b;
  suml2[0] = sl2_a;
  suml2[1] = sl2_b;
}

// The search's state per lane: the best fit so far and the inverse scale
// whose levels it keeps.
struct SearchState {
  __m512 scale, best, best_iscale;
};

// The reference's acceptance test and update for one candidate.
QUANTD_AVX512_INLINE void Accept(__m512 iscale, __m512 sumlx, __m512 suml2, SearchState* s) {
  const __mmask16 upd =
      _mm512_cmp_ps_mask(suml2, _mm512_setzero_ps(), _CMP_GT_OQ) &
      _mm512_cmp_ps_mask(_mm512_mul_ps(sumlx, sumlx), _mm512_mul_ps(s->best, suml2), _CMP_GT_OQ);
  if (upd == 0) return;
  s->best_iscale = _mm512_mask_mov_ps(s->best_iscale, upd, iscale);
  s->scale = _mm512_mask_div_ps(s->scale, upd, sumlx, suml2);
  s->best = _mm512_mask_mul_ps(s->best, upd, s->scale, sumlx);
}

// Candidates is = kIs and kIs + 1 of the reference's loop (-9..9 without 0).
template <int kIs, int kNext>
QUANTD_AVX512_INLINE void CandidatePair(__m512 max, const __m512* X, const __m512* W,
                                        const __m512* WX, SearchState* s) {
  constexpr float kNumA = -(static_cast<float>(kNmax) + 0.1f * static_cast<float>(kIs));
  constexpr float kNumB = -(static_cast<float>(kNmax) + 0.1f * static_cast<float>(kNext));
  constexpr Clamp kA = ClampFor(-kNumA), kB = ClampFor(-kNumB);
  constexpr Clamp kClamp = kA > kB ? kA : kB;
  const __m512 iscale_a = _mm512_div_ps(_mm512_set1_ps(kNumA), max);
  const __m512 iscale_b = _mm512_div_ps(_mm512_set1_ps(kNumB), max);
  __m512 sumlx[2], suml2[2];
  CandidateSums2<kClamp>(iscale_a, iscale_b, X, W, WX, sumlx, suml2);
  Accept(iscale_a, sumlx[0], suml2[0], s);
  Accept(iscale_b, sumlx[1], suml2[1], s);
}

// X[i] lane k = x[16 k + i]: the 16 x 16 transpose of the super-block (rows
// are sub-blocks). Pairs of rows interleave by floats, then by float pairs
// (each 128-bit chunk then holds one column of four rows), then the 4 x 4
// grid of chunks is transposed with two rounds of 128-bit shuffles.
QUANTD_AVX512_INLINE void TransposeSubBlocks(const float* x, __m512* X) {
  __m512 a[16], b[16];
  for (int m = 0; m < 8; ++m) {
    const __m512 r0 = _mm512_loadu_ps(x + 32 * m), r1 = _mm512_loadu_ps(x + 32 * m + 16);
    a[2 * m] = _mm512_unpacklo_ps(r0, r1);
    a[2 * m + 1] = _mm512_unpackhi_ps(r0, r1);
  }
  auto lo = [](__m512 u, __m512 v) QUANTD_AVX512_LAMBDA {
    return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(u), _mm512_castps_pd(v)));
  };
  auto hi = [](__m512 u, __m512 v) QUANTD_AVX512_LAMBDA {
    return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(u), _mm512_castps_pd(v)));
  };
  for (int p = 0; p < 4; ++p) {  // b[4p + c] chunk L: column 4L + c, rows 4p..4p+3
    b[4 * p] = lo(a[4 * p], a[4 * p + 2]);
    b[4 * p + 1] = hi(a[4 * p], a[4 * p + 2]);
    b[4 * p + 2] = lo(a[4 * p + 1], a[4 * p + 3]);
    b[4 * p + 3] = hi(a[4 * p + 1], a[4 * p + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 u0 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x88);
    const __m512 u1 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xdd);
    const __m512 u2 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x88);
    const __m512 u3 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xdd);
    X[c] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    X[4 + c] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    X[8 + c] = _mm512_shuffle_f32x4(u0, u2, 0xdd);
    X[12 + c] = _mm512_shuffle_f32x4(u1, u3, 0xdd);
  }
}

// MakeQxQuants(16, 32, ...) for the 16 sub-blocks of the super-block x:
// scales[j] (the reference's return value), best_iscale[j] (the inverse
// scale of the levels it keeps) and the mask of all-zero sub-blocks (levels
// 0, scale 0).
QUANTD_AVX512_INLINE __mmask16 SearchQ6_K(const float* x, float* scales, float* best_iscale) {
  __m512 X[kSub], W[kSub], WX[kSub];  // lane j: value i of sub-block j; x^2; x^2 * x
  TransposeSubBlocks(x, X);
  __m512 amax = _mm512_setzero_ps(), max = _mm512_setzero_ps();
  for (int i = 0; i < kSub; ++i) {
    const __m512 ax = _mm512_abs_ps(X[i]);
    const __mmask16 m = _mm512_cmp_ps_mask(ax, amax, _CMP_GT_OQ);
    amax = _mm512_mask_mov_ps(amax, m, ax);
    max = _mm512_mask_mov_ps(max, m, X[i]);
    W[i] = _mm512_mul_ps(X[i], X[i]);
    WX[i] = _mm512_mul_ps(W[i], X[i]);
  }
  const __mmask16 zero = _mm512_cmp_ps_mask(amax, _mm512_set1_ps(kGroupMaxEps), _CMP_LT_OQ);
  // The first fit, with iscale = -nmax / max.
  const __m512 iscale0 = _mm512_div_ps(_mm512_set1_ps(-static_cast<float>(kNmax)), max);
  __m512 sumlx = _mm512_setzero_ps(), suml2 = _mm512_setzero_ps();
  for (int i = 0; i < kSub; ++i) {
    const __m512 fl = LevelsV<Clamp::kUpper>(iscale0, X[i]);
    sumlx = _mm512_add_ps(sumlx, _mm512_mul_ps(WX[i], fl));
    suml2 = _mm512_add_ps(suml2, _mm512_mul_ps(_mm512_mul_ps(W[i], fl), fl));
  }
  SearchState s;
  s.scale = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(suml2, _mm512_setzero_ps(), _CMP_NEQ_UQ), sumlx,
                                suml2);
  s.best = _mm512_mul_ps(s.scale, sumlx);
  s.best_iscale = iscale0;
  CandidatePair<-9, -8>(max, X, W, WX, &s);
  CandidatePair<-7, -6>(max, X, W, WX, &s);
  CandidatePair<-5, -4>(max, X, W, WX, &s);
  CandidatePair<-3, -2>(max, X, W, WX, &s);
  CandidatePair<-1, 1>(max, X, W, WX, &s);
  CandidatePair<2, 3>(max, X, W, WX, &s);
  CandidatePair<4, 5>(max, X, W, WX, &s);
  CandidatePair<6, 7>(max, X, W, WX, &s);
  CandidatePair<8, 9>(max, X, W, WX, &s);
  _mm512_storeu_ps(scales, _mm512_mask_mov_ps(s.scale, zero, _mm512_setzero_ps()));
  _mm512_storeu_ps(best_iscale, s.best_iscale);
  return zero;
}

// SetQ6_KScales on the 16 scales in one register: the same bytes. The
// reference keeps the first scale of the largest magnitude; with every
// scale finite that is the first lane equal to the maximum. Non-finite
// scales (from values near the float range) take the scalar function.
QUANTD_AVX512_INLINE bool SetQ6_KScalesV(const float* scales, BlockQ6_K* y) {
  const __m512 s = _mm512_loadu_ps(scales);
  const __m512 a = _mm512_abs_ps(s);
  const __mmask16 finite = _mm512_cmp_ps_mask(a, _mm512_set1_ps(3.40282347e38f), _CMP_LE_OQ);
  if (finite != 0xffff) return SetQ6_KScales(scales, y);
  const float max_abs_scale = _mm512_reduce_max_ps(a);
  if (max_abs_scale < kGroupMaxEps) return SetQ6_KScales(scales, y);
  const __mmask16 at_max = _mm512_cmp_ps_mask(a, _mm512_set1_ps(max_abs_scale), _CMP_EQ_OQ);
  const float max_scale = scales[__builtin_ctz(at_max)];
  const float iscale = -128.0f / max_scale;
  y->d = FloatToHalf(1.0f / iscale);
  const __m512i v = _mm512_min_epi32(NearestIntV(_mm512_mul_ps(_mm512_set1_ps(iscale), s)),
                                     _mm512_set1_epi32(127));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(y->scales), _mm512_cvtepi32_epi8(v));
  return true;
}

// AddQualitySums' 16 float lanes of one span: lane k takes the values
// i % 16 == k, which is the lanes of a register of 16 consecutive values.
struct SpanSums {
  __m512 w2, e2, emax;
};

// One super-block. With `sums`, adds its values and stored values, d *
// scale * (level - 32) as the dequantizer computes them, to *sums.
QUANTD_AVX512_INLINE void QuantizeBlockQ6_K(const float* x, BlockQ6_K* y, SpanSums* sums) {
  alignas(64) float scales[kSub];
  alignas(64) float best_iscale[kSub];
  alignas(64) int8_t L[kQKK];
  const __mmask16 zero = SearchQ6_K(x, scales, best_iscale);
  const bool nonzero = SetQ6_KScalesV(scales, y);
  const float dh = HalfToFloat(y->d);
  for (int j = 0; j < kSub; ++j) {
    const __m512 xv = _mm512_loadu_ps(x + kSub * j);
    const float d = dh * static_cast<float>(y->scales[j]);
    __m512i level = _mm512_setzero_si512();
    if (nonzero) {
      if (d != 0.0f) {
        // FinishQ6_K's span: (x + 0) / d; x + 0 differs from x only for
        // x = -0, whose quotient rounds to 0 either way.
        level = StoredLevel(NearestIntV(_mm512_div_ps(xv, _mm512_set1_ps(d))));
      } else if (((zero >> j) & 1) == 0) {
        level = StoredLevel(NearestIntV(_mm512_mul_ps(_mm512_set1_ps(best_iscale[j]), xv)));
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(L + kSub * j), _mm512_cvtepi32_epi8(level));
    }
    if (sums != nullptr) {
      const __m512 stored = _mm512_mul_ps(
          _mm512_set1_ps(d), _mm512_cvtepi32_ps(_mm512_sub_epi32(level, _mm512_set1_epi32(kNmax))));
      const __m512 e = _mm512_sub_ps(xv, stored);
      sums->w2 = _mm512_add_ps(sums->w2, _mm512_mul_ps(xv, xv));
      sums->e2 = _mm512_add_ps(sums->e2, _mm512_mul_ps(e, e));
      // emax > |e| ? emax : |e|, as the reference's select.
      sums->emax = _mm512_max_ps(sums->emax, _mm512_abs_ps(e));
    }
  }
  if (nonzero) PackQ6_K_avx2(L, y);
}

// The largest |x| bit pattern of a super-block: at least 0x7f800000 when
// one value is NaN or Inf.
QUANTD_AVX512_INLINE uint32_t AbsMaxBitsQKK(const float* x) {
  __m512i m = _mm512_setzero_si512();
  for (int j = 0; j < kQKK; j += 16) {
    m = _mm512_max_epu32(
        m, _mm512_and_si512(_mm512_loadu_si512(x + j), _mm512_set1_epi32(0x7fffffff)));
  }
  return _mm512_reduce_max_epu32(m);
}
constexpr uint32_t kNonFiniteBits = 0x7f800000u;

}  // namespace

QUANTD_AVX512 void QuantizeQ6_K_avx512(const float* x, BlockQ6_K* y, int64_t n) {
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) QuantizeBlockQ6_K(x, &y[b], nullptr);
}

// Q6_K in one pass, as QuantizeQ6_KChecked_avx2: per super-block the
// NaN/Inf check, the quantizer and (q non-null) the quality sums of its
// stored values, span by span.
QUANTD_AVX512 int64_t QuantizeQ6_KChecked_avx512(const float* x, BlockQ6_K* y, int64_t n,
                                                 QualitySums* q) {
  constexpr int64_t kSpanBlocks = kQualitySpan / kQKK;
  static_assert(kQualitySpan % kQKK == 0);
  const int64_t nb = n / kQKK;
  for (int64_t b0 = 0; b0 < nb; b0 += kSpanBlocks) {
    const int64_t b1 = std::min(nb, b0 + kSpanBlocks);
    SpanSums s{_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t b = b0; b < b1; ++b) {
      const float* xb = x + b * kQKK;
      // The next super-block's lines, while this one is searched.
      for (int line = 0; line < kQKK * 4; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(xb + kQKK) + line, _MM_HINT_T0);
      }
      if (AbsMaxBitsQKK(xb) >= kNonFiniteBits) {
        for (int j = 0; j < kQKK; ++j) {
          uint32_t bits;
          std::memcpy(&bits, xb + j, sizeof(bits));
          if ((bits & kNonFiniteBits) == kNonFiniteBits) return b * kQKK + j;
        }
      }
      QuantizeBlockQ6_K(xb, &y[b], q != nullptr ? &s : nullptr);
    }
    if (q != nullptr) {
      alignas(64) float w2[16], e2[16], emax[16];
      _mm512_store_ps(w2, s.w2);
      _mm512_store_ps(e2, s.e2);
      _mm512_store_ps(emax, s.emax);
      for (int k = 0; k < 16; ++k) {
        q->sum_w2 += w2[k];
        q->sum_e2 += e2[k];
        q->max_abs = std::max(q->max_abs, static_cast<double>(emax[k]));
      }
    }
  }
  return -1;
}

}  // namespace quantd::core::gguf::internal
