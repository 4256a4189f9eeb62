// AVX2 K-quant kernels: the reference searches run with one sub-block per
// SIMD lane. Each lane performs exactly the reference's sequence of fp32
// operations (same order, same rounding, branches turned into selects), so
// the bytes are identical to the _ref kernels; only independent sub-blocks
// run side by side. The per-block finishing step is shared with the
// reference (quants_ref.cc).
//
// Every function here is compiled for AVX2 (target attribute) and is only
// called after QuantsUseAvx2() returned true.
#include <immintrin.h>

#include <cstring>

#include "quantd/core/base/half.h"
#include "quants_internal.h"

#define QUANTD_AVX2 __attribute__((target("avx2")))
#define QUANTD_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline

namespace quantd::core::gguf::internal {
namespace {

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

QUANTD_AVX2_INLINE v8i NearestIntV(v8f f) {
  const v8f v = f + 12582912.0f;
  const v8i i = __builtin_bit_cast(v8i, v);
  return (i & 0x007fffff) - 0x00400000;
}
QUANTD_AVX2_INLINE v8f ToFloat(v8i i) { return __builtin_convertvector(i, v8f); }
QUANTD_AVX2_INLINE v8f AbsV(v8f x) {
  return __builtin_bit_cast(v8f, __builtin_bit_cast(v8i, x) & 0x7fffffff);
}
QUANTD_AVX2_INLINE v8i ClampV(v8i l, int lo, int hi) {
  l = l < lo ? v8i{} + lo : l;
  return l > hi ? v8i{} + hi : l;
}
QUANTD_AVX2_INLINE v8f Select(v8i m, v8f a, v8f b) { return m ? a : b; }
QUANTD_AVX2_INLINE bool AnySet(v8i m) {
  for (int k = 0; k < 8; ++k) {
    if (m[k]) return true;
  }
  return false;
}
QUANTD_AVX2_INLINE v8f SqrtV(v8f x) { return __builtin_ia32_sqrtps256(x); }

// Lane k of X[i] = x[k * N + i] (N floats per sub-block, 8 sub-blocks).
template <int N>
QUANTD_AVX2_INLINE void Gather(const float* x, v8f* X) {
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i < N; ++i) X[i][k] = x[k * N + i];
  }
}

// MakeQkx2Quants for 8 sub-blocks of N values at once.
template <int N>
QUANTD_AVX2_INLINE void MakeQkx2QuantsV(int nmax, const v8f* X, const v8f* W, v8i* L, v8f* scale_out,
                                        v8f* the_min, float rmin, float rdelta, int nstep, bool use_mad) {
  v8f min = X[0], max = X[0];
  v8f sum_w = W[0];
  v8f sum_x = sum_w * X[0];
  for (int i = 1; i < N; ++i) {
    min = Select(X[i] < min, X[i], min);
    max = Select(X[i] > max, X[i], max);
    sum_w += W[i];
    sum_x += W[i] * X[i];
  }
  min = Select(min > 0.0f, v8f{}, min);
  const v8i degenerate = max == min;
  v8f iscale = static_cast<float>(nmax) / (max - min);
  v8f scale = 1.0f / iscale;
  v8f best_error = {};
  for (int i = 0; i < N; ++i) {
    L[i] = ClampV(NearestIntV(iscale * (X[i] - min)), 0, nmax);
    v8f diff = scale * ToFloat(L[i]) + min - X[i];
    diff = use_mad ? AbsV(diff) : diff * diff;
    best_error += W[i] * diff;
  }
  v8i Laux[N];
  for (int is = 0; is <= nstep; ++is) {
    const float num = rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax);
    iscale = num / (max - min);  // min moves with the best fit so far
    v8f sum_l = {}, sum_l2 = {}, sum_xl = {};
    for (int i = 0; i < N; ++i) {
      Laux[i] = ClampV(NearestIntV(iscale * (X[i] - min)), 0, nmax);
      const v8f fl = ToFloat(Laux[i]);
      const v8f w = W[i];
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * X[i];
    }
    const v8f D = sum_w * sum_l2 - sum_l * sum_l;
    v8f this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    v8f this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    const v8i pos = this_min > 0.0f;
    this_min = Select(pos, v8f{}, this_min);
    this_scale = Select(pos, sum_xl / sum_l2, this_scale);
    v8f cur_error = {};
    for (int i = 0; i < N; ++i) {
      v8f diff = this_scale * ToFloat(Laux[i]) + this_min - X[i];
      diff = use_mad ? AbsV(diff) : diff * diff;
      cur_error += W[i] * diff;
    }
    const v8i upd = (D > 0.0f) & (cur_error < best_error) & ~degenerate;
    if (!AnySet(upd)) continue;
    for (int i = 0; i < N; ++i) L[i] = upd ? Laux[i] : L[i];
    best_error = Select(upd, cur_error, best_error);
    scale = Select(upd, this_scale, scale);
    min = Select(upd, this_min, min);
  }
  for (int i = 0; i < N; ++i) L[i] = degenerate ? v8i{} : L[i];
  *scale_out = Select(degenerate, v8f{}, scale);
  *the_min = -min;
}

// Lane-parallel max |x| and the signed value that reaches it first.
template <int N>
QUANTD_AVX2_INLINE void SignedAbsMax(const v8f* X, v8f* amax, v8f* max) {
  *amax = v8f{};
  *max = v8f{};
  for (int i = 0; i < N; ++i) {
    const v8f ax = AbsV(X[i]);
    const v8i m = ax > *amax;
    *amax = Select(m, ax, *amax);
    *max = Select(m, X[i], *max);
  }
}

// MakeQxQuants (rmse_type 1, weights x^2) for 8 sub-blocks of N values.
template <int N>
QUANTD_AVX2_INLINE void MakeQxQuantsV(int nmax, const v8f* X, v8i* L, v8f* scale_out) {
  v8f amax, max;
  SignedAbsMax<N>(X, &amax, &max);
  const v8i zero = amax < kGroupMaxEps;
  v8f iscale = static_cast<float>(-nmax) / max;
  v8f sumlx = {}, suml2 = {};
  for (int i = 0; i < N; ++i) {
    const v8i l = ClampV(NearestIntV(iscale * X[i]), -nmax, nmax - 1);
    L[i] = l + nmax;
    const v8f w = X[i] * X[i];
    const v8f fl = ToFloat(l);
    sumlx += w * X[i] * fl;
    suml2 += w * fl * fl;
  }
  v8f scale = Select(suml2 != 0.0f, sumlx / suml2, v8f{});
  v8f best = scale * sumlx;
  v8i Lt[N];
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float num = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is));
    iscale = num / max;
    sumlx = v8f{};
    suml2 = v8f{};
    for (int i = 0; i < N; ++i) {
      const v8i l = ClampV(NearestIntV(iscale * X[i]), -nmax, nmax - 1);
      Lt[i] = l + nmax;
      const v8f w = X[i] * X[i];
      const v8f fl = ToFloat(l);
      sumlx += w * X[i] * fl;
      suml2 += w * fl * fl;
    }
    const v8i upd = (suml2 > 0.0f) & (sumlx * sumlx > best * suml2);
    if (!AnySet(upd)) continue;
    for (int i = 0; i < N; ++i) L[i] = upd ? Lt[i] : L[i];
    scale = Select(upd, sumlx / suml2, scale);
    best = Select(upd, scale * sumlx, best);
  }
  for (int i = 0; i < N; ++i) L[i] = zero ? v8i{} : L[i];
  *scale_out = Select(zero, v8f{}, scale);
}

// MakeQ3Quants (do_rmse) for 8 sub-blocks of N values. A lane whose pass
// changes nothing would change nothing in later passes either, so running
// the passes for all lanes until none changes matches the per-lane early exit.
template <int N>
QUANTD_AVX2_INLINE void MakeQ3QuantsV(int nmax, const v8f* X, v8i* L, v8f* scale_out) {
  v8f amax, max;
  SignedAbsMax<N>(X, &amax, &max);
  const v8i zero = amax < kGroupMaxEps;
  const v8f iscale = static_cast<float>(-nmax) / max;
  v8f sumlx = {}, suml2 = {};
  for (int i = 0; i < N; ++i) {
    L[i] = ClampV(NearestIntV(iscale * X[i]), -nmax, nmax - 1);
    const v8f w = X[i] * X[i];
    const v8f fl = ToFloat(L[i]);
    sumlx += w * X[i] * fl;
    suml2 += w * fl * fl;
  }
  for (int itry = 0; itry < 5; ++itry) {
    v8i changed = {};
    for (int i = 0; i < N; ++i) {
      const v8f w = X[i] * X[i];
      const v8f fL = ToFloat(L[i]);
      v8f slx = sumlx - w * X[i] * fL;
      const v8i c1 = slx > 0.0f;
      v8f sl2 = suml2 - w * fL * fL;
      const v8i new_l = ClampV(NearestIntV(X[i] * sl2 / slx), -nmax, nmax - 1);
      const v8i c2 = c1 & (new_l != L[i]);
      const v8f fn = ToFloat(new_l);
      slx += w * X[i] * fn;
      sl2 += w * fn * fn;
      const v8i c3 = c2 & (sl2 > 0.0f) & (slx * slx * suml2 > sumlx * sumlx * sl2);
      L[i] = c3 ? new_l : L[i];
      sumlx = Select(c3, slx, sumlx);
      suml2 = Select(c3, sl2, suml2);
      changed |= c3;
    }
    if (!AnySet(changed)) break;
  }
  for (int i = 0; i < N; ++i) L[i] = zero ? v8i{} : L[i] + nmax;
  *scale_out = Select(zero, v8f{}, Select(suml2 > 0.0f, sumlx / suml2, v8f{}));
}

template <int N, class T>
QUANTD_AVX2_INLINE void Scatter(const v8i* L, T* out) {
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i < N; ++i) out[k * N + i] = static_cast<T>(L[i][k]);
  }
}

template <int kBits, class Block>
QUANTD_AVX2 void QuantizeQkMinAvx2(const float* x, Block* y, int64_t n) {
  constexpr int kNmax = (1 << kBits) - 1;
  constexpr float kRmin = kBits == 4 ? -1.0f : -0.5f;
  constexpr int kNstep = kBits == 4 ? 20 : 15;
  uint8_t L[kQKK];
  float scales[8], mins[8];
  v8f X[32], W[32];
  v8i Lv[32];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    Gather<32>(x, X);
    v8f sum_x2 = {};
    for (int l = 0; l < 32; ++l) sum_x2 += X[l] * X[l];
    const v8f av_x = SqrtV(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) W[l] = av_x + AbsV(X[l]);
    v8f sc, mn;
    MakeQkx2QuantsV<32>(kNmax, X, W, Lv, &sc, &mn, kRmin, 0.1f, kNstep, false);
    std::memcpy(scales, &sc, sizeof(scales));
    std::memcpy(mins, &mn, sizeof(mins));
    Scatter<32>(Lv, L);
    FinishQkMin<kBits>(x, scales, mins, L, &y[b]);
  }
}

// Max |x| over 32 floats (order-independent, so exact).
QUANTD_AVX2_INLINE float AbsMax32(const float* x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
  for (int j = 8; j < 32; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}

}  // namespace

// Q8_0: roundf (half away from zero) done exactly as trunc + (|frac| >= 0.5).
QUANTD_AVX2 void QuantizeQ8_0_avx2(const float* x, BlockQ8_0* y, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    const float amax = AbsMax32(x);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = FloatToHalf(d);
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid);
      const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
      const __m256 bump = _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ),
                                        _mm256_or_ps(one, _mm256_and_ps(v, sign)));
      q[k] = _mm256_cvttps_epi32(_mm256_add_ps(t, bump));
    }
    const __m256i p16a = _mm256_packs_epi32(q[0], q[1]);
    const __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
    __m256i p8 = _mm256_packs_epi16(p16a, p16b);
    // packs work per 128-bit lane: restore element order.
    p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), p8);
  }
}

// Q4_0: the scale comes from the first element with the largest |x|.
QUANTD_AVX2 void QuantizeQ4_0_avx2(const float* x, BlockQ4_0* y, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    const float amax = AbsMax32(x);
    const __m256 vamax = _mm256_set1_ps(amax);
    uint32_t hits = 0;
    for (int k = 0; k < 4; ++k) {
      const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k));
      hits |= static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a, vamax, _CMP_EQ_OQ))) << (8 * k);
    }
    const float max = amax > 0.0f ? x[__builtin_ctz(hits)] : 0.0f;
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = FloatToHalf(d);
    const __m256 vid = _mm256_set1_ps(id);
    const __m256 off = _mm256_set1_ps(8.5f);
    const __m256i fifteen = _mm256_set1_epi32(15);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid), off);
      q[k] = _mm256_min_epi32(_mm256_cvttps_epi32(v), fifteen);
    }
    // qs[j] = q[j] | q[j + 16] << 4
    const __m256i lo = _mm256_packs_epi32(q[0], q[1]);  // j 0..15 (lane-interleaved)
    const __m256i hi = _mm256_packs_epi32(q[2], q[3]);  // j 16..31
    const __m256i packed = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
    const __m256i bytes = _mm256_packus_epi16(packed, packed);
    const __m256i ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs), _mm256_castsi256_si128(ordered));
  }
}

QUANTD_AVX2 void QuantizeQ4_K_avx2(const float* x, BlockQ4_K* y, int64_t n) {
  QuantizeQkMinAvx2<4>(x, y, n);
}

QUANTD_AVX2 void QuantizeQ5_K_avx2(const float* x, BlockQ5_K* y, int64_t n) {
  QuantizeQkMinAvx2<5>(x, y, n);
}

QUANTD_AVX2 void QuantizeQ2_K_avx2(const float* x, BlockQ2_K* y, int64_t n) {
  uint8_t L[kQKK];
  float scales[16], mins[16];
  v8f X[16], W[16];
  v8i Lv[16];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    for (int g = 0; g < 2; ++g) {
      Gather<16>(x + 128 * g, X);
      for (int l = 0; l < 16; ++l) W[l] = AbsV(X[l]);
      v8f sc, mn;
      MakeQkx2QuantsV<16>(3, X, W, Lv, &sc, &mn, -0.5f, 0.1f, 15, true);
      std::memcpy(scales + 8 * g, &sc, sizeof(sc));
      std::memcpy(mins + 8 * g, &mn, sizeof(mn));
      Scatter<16>(Lv, L + 128 * g);
    }
    FinishQ2_K(x, scales, mins, L, &y[b]);
  }
}

QUANTD_AVX2 void QuantizeQ3_K_avx2(const float* x, BlockQ3_K* y, int64_t n) {
  int8_t L[kQKK];
  float scales[16];
  v8f X[16];
  v8i Lv[16];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    for (int g = 0; g < 2; ++g) {
      Gather<16>(x + 128 * g, X);
      v8f sc;
      MakeQ3QuantsV<16>(4, X, Lv, &sc);
      std::memcpy(scales + 8 * g, &sc, sizeof(sc));
      Scatter<16>(Lv, L + 128 * g);
    }
    FinishQ3_K(x, scales, L, &y[b]);
  }
}

QUANTD_AVX2 void QuantizeQ6_K_avx2(const float* x, BlockQ6_K* y, int64_t n) {
  int8_t L[kQKK];
  float scales[16];
  v8f X[16];
  v8i Lv[16];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    for (int g = 0; g < 2; ++g) {
      Gather<16>(x + 128 * g, X);
      v8f sc;
      MakeQxQuantsV<16>(32, X, Lv, &sc);
      std::memcpy(scales + 8 * g, &sc, sizeof(sc));
      Scatter<16>(Lv, L + 128 * g);
    }
    FinishQ6_K(x, scales, L, &y[b]);
  }
}

}  // namespace quantd::core::gguf::internal
