// AVX2 K-quant kernels: the reference searches run with one sub-block per
// SIMD lane (16 lanes = two registers). Each lane performs exactly the reference's sequence of fp32
// operations (same order, same rounding, branches turned into selects), so
// the bytes are identical to the _ref kernels; only independent sub-blocks
// run side by side. The per-block finishing step is shared with the
// reference (quants_ref.cc), except Q6_K's, which runs on the values in
// their own order (the same operations per value).
//
// Every function here is compiled for AVX2 (target attribute) and is only
// called from CpuLevel::kAvx2 up (QuantizeRow, through the kernel table;
// PackQ6_K_avx2 also from the AVX-512 Q6_K kernel).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/half.h"
#include "quants_internal.h"

// The 64-byte vector helpers are always inlined; their (non-)ABI does not matter.
#pragma GCC diagnostic ignored "-Wpsabi"

#define QUANTD_AVX2 __attribute__((target("avx2")))
#define QUANTD_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline
#define QUANTD_AVX2_INLINE_LAMBDA __attribute__((target("avx2"), always_inline))

namespace quantd::core::gguf::internal {
namespace {

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
// The searches use 16 lanes held in two AVX2 registers: the reference's sums
// are sequential chains, and two independent chains per operation keep the
// adders busy. F2/I2 are that pair (GCC lowers 64-byte vector types badly
// without AVX-512, so the pair is spelled out).
constexpr int kLanes = 16;
struct VF {
  v8f h[2];
};
struct VI {
  v8i h[2];
};

#define QUANTD_PAIR_OP(R, T, U, op) \
  QUANTD_AVX2_INLINE R operator op(T a, U b) { return R{{a.h[0] op b.h[0], a.h[1] op b.h[1]}}; }
#define QUANTD_PAIR_OPS(R, T, U, op)                                                   \
  QUANTD_PAIR_OP(R, T, T, op)                                                          \
  QUANTD_AVX2_INLINE R operator op(T a, U b) { return R{{a.h[0] op b, a.h[1] op b}}; } \
  QUANTD_AVX2_INLINE R operator op(U a, T b) { return R{{a op b.h[0], a op b.h[1]}}; }
QUANTD_PAIR_OPS(VF, VF, float, +)
QUANTD_PAIR_OPS(VF, VF, float, -)
QUANTD_PAIR_OPS(VF, VF, float, *)
QUANTD_PAIR_OPS(VF, VF, float, /)
QUANTD_PAIR_OPS(VI, VF, float, <)
QUANTD_PAIR_OPS(VI, VF, float, >)
QUANTD_PAIR_OPS(VI, VF, float, ==)
QUANTD_PAIR_OPS(VI, VF, float, !=)
QUANTD_PAIR_OPS(VI, VI, int, +)
QUANTD_PAIR_OPS(VI, VI, int, -)
QUANTD_PAIR_OPS(VI, VI, int, &)
QUANTD_PAIR_OPS(VI, VI, int, |)
QUANTD_PAIR_OPS(VI, VI, int, <)
QUANTD_PAIR_OPS(VI, VI, int, >)
QUANTD_PAIR_OPS(VI, VI, int, !=)
#undef QUANTD_PAIR_OPS
#undef QUANTD_PAIR_OP
QUANTD_AVX2_INLINE VF operator-(VF a) { return VF{{-a.h[0], -a.h[1]}}; }
QUANTD_AVX2_INLINE VI operator~(VI a) { return VI{{~a.h[0], ~a.h[1]}}; }
QUANTD_AVX2_INLINE VF& operator+=(VF& a, VF b) { return a = a + b; }
QUANTD_AVX2_INLINE VI& operator|=(VI& a, VI b) { return a = a | b; }
// Lane access by value (a reference to a vector element is a GCC extension).
QUANTD_AVX2_INLINE float Lane(const VF& v, int k) { return v.h[k >> 3][k & 7]; }
QUANTD_AVX2_INLINE void SetLane(VF& v, int k, float x) { v.h[k >> 3][k & 7] = x; }
QUANTD_AVX2_INLINE int32_t Lane(const VI& v, int k) { return v.h[k >> 3][k & 7]; }

QUANTD_AVX2_INLINE v8i NearestIntV(v8f f) {
  const v8f v = f + 12582912.0f;
  const v8i i = __builtin_bit_cast(v8i, v);
  return (i & 0x007fffff) - 0x00400000;
}
QUANTD_AVX2_INLINE VI NearestIntV(VF f) { return VI{{NearestIntV(f.h[0]), NearestIntV(f.h[1])}}; }
QUANTD_AVX2_INLINE VF ToFloat(VI i) {
  return VF{{__builtin_convertvector(i.h[0], v8f), __builtin_convertvector(i.h[1], v8f)}};
}
QUANTD_AVX2_INLINE VF AbsV(VF x) {
  for (auto& h : x.h) h = __builtin_bit_cast(v8f, __builtin_bit_cast(v8i, h) & 0x7fffffff);
  return x;
}
QUANTD_AVX2_INLINE v8i ClampV(v8i l, int lo, int hi) {
  const __m256i c = _mm256_min_epi32(
      _mm256_max_epi32(reinterpret_cast<__m256i>(l), _mm256_set1_epi32(lo)), _mm256_set1_epi32(hi));
  return reinterpret_cast<v8i>(c);
}
QUANTD_AVX2_INLINE VI ClampV(VI l, int lo, int hi) {
  return VI{{ClampV(l.h[0], lo, hi), ClampV(l.h[1], lo, hi)}};
}
// ToFloat(ClampV(NearestIntV(f), lo, hi)) without the integer round trip:
// the same value for |f| <= 2^22 (ties to even either way); a lane outside
// that (NaN or infinite f: an all-zero sub-block, whose result is dropped)
// gets some value in [lo, hi] in both.
QUANTD_AVX2_INLINE VF RoundClampV(VF f, float lo, float hi) {
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  VF r;
  for (int h = 0; h < 2; ++h) {
    const __m256 v = _mm256_round_ps(reinterpret_cast<__m256>(f.h[h]),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r.h[h] = reinterpret_cast<v8f>(_mm256_min_ps(_mm256_max_ps(v, vlo), vhi));
  }
  return r;
}
// The rounding of RoundClampV alone, and with the upper clamp only.
QUANTD_AVX2_INLINE VF RoundV(VF f) {
  for (auto& h : f.h) {
    h = reinterpret_cast<v8f>(_mm256_round_ps(reinterpret_cast<__m256>(h),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  return f;
}
QUANTD_AVX2_INLINE VF MinV(VF f, float hi) {
  for (auto& h : f.h) {
    h = reinterpret_cast<v8f>(_mm256_min_ps(reinterpret_cast<__m256>(h), _mm256_set1_ps(hi)));
  }
  return f;
}
QUANTD_AVX2_INLINE VF Select(VI m, VF a, VF b) {
  return VF{{m.h[0] ? a.h[0] : b.h[0], m.h[1] ? a.h[1] : b.h[1]}};
}
QUANTD_AVX2_INLINE VI Select(VI m, VI a, VI b) {
  return VI{{m.h[0] ? a.h[0] : b.h[0], m.h[1] ? a.h[1] : b.h[1]}};
}
QUANTD_AVX2_INLINE bool AnySet(VI m) {
  return !_mm256_testz_si256(reinterpret_cast<__m256i>(m.h[0] | m.h[1]),
                             reinterpret_cast<__m256i>(m.h[0] | m.h[1]));
}
QUANTD_AVX2_INLINE VF SqrtV(VF x) {
  return VF{{reinterpret_cast<v8f>(_mm256_sqrt_ps(reinterpret_cast<__m256>(x.h[0]))),
             reinterpret_cast<v8f>(_mm256_sqrt_ps(reinterpret_cast<__m256>(x.h[1])))}};
}

// QuantizeSpan for n a multiple of 16.
QUANTD_AVX2 void QuantizeSpanAvx2(const float* x, float dm, float d, int lo, int hi, int bias,
                                  uint8_t* L, int n) {
  const __m256 vdm = _mm256_set1_ps(dm), vd = _mm256_set1_ps(d);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int i = 0; i < n; i += 16) {
    v8i l[2];
    for (int h = 0; h < 2; ++h) {
      const __m256 v = _mm256_div_ps(_mm256_add_ps(_mm256_loadu_ps(x + i + 8 * h), vdm), vd);
      l[h] = ClampV(NearestIntV(reinterpret_cast<v8f>(v)), lo, hi) + bias;
    }
    // Levels are 0..63: pack to bytes and restore the element order.
    const __m256i p16 =
        _mm256_packs_epi32(reinterpret_cast<__m256i>(l[0]), reinterpret_cast<__m256i>(l[1]));
    const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(p16, p16), order);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(L + i), _mm256_castsi256_si128(p8));
  }
}

// 16 levels ClampInt(NearestInt(iscale * x), -32, 31) + 32 (Q6_K's search
// levels of one sub-block).
QUANTD_AVX2_INLINE void QuantizeSpanScaledAvx2(const float* x, float iscale, int8_t* L) {
  const __m256 vi = _mm256_set1_ps(iscale);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  v8i l[2];
  for (int h = 0; h < 2; ++h) {
    const __m256 v = _mm256_mul_ps(vi, _mm256_loadu_ps(x + 8 * h));
    l[h] = ClampV(NearestIntV(reinterpret_cast<v8f>(v)), -32, 31) + 32;
  }
  const __m256i p16 =
      _mm256_packs_epi32(reinterpret_cast<__m256i>(l[0]), reinterpret_cast<__m256i>(l[1]));
  const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(p16, p16), order);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(L), _mm256_castsi256_si128(p8));
}

// Lanes 0-7 of X[i] = x0[k * N + i], lanes 8-15 = x1[k * N + i]: two runs of
// 8 sub-blocks of N floats.
template <int N>
QUANTD_AVX2_INLINE void Gather(const float* x0, const float* x1, VF* X) {
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i < N; ++i) {
      SetLane(X[i], k, x0[k * N + i]);
      SetLane(X[i], k + 8, x1[k * N + i]);
    }
  }
}

// out[c] lane k = x[k * stride + c] for k, c < 8: an 8 x 8 transpose (rows
// interleaved by floats, then by float pairs, then 128-bit halves swapped).
QUANTD_AVX2_INLINE void Transpose8x8(const float* x, int stride, v8f* out) {
  __m256 t[8], u[8];
  for (int k = 0; k < 8; k += 2) {
    const __m256 r0 = _mm256_loadu_ps(x + k * stride), r1 = _mm256_loadu_ps(x + (k + 1) * stride);
    t[k] = _mm256_unpacklo_ps(r0, r1);
    t[k + 1] = _mm256_unpackhi_ps(r0, r1);
  }
  for (int k = 0; k < 8; k += 4) {  // u[k + c] lane half L: column 4L + c, rows k..k+3
    u[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
    u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xee);
    u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
    u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xee);
  }
  for (int c = 0; c < 4; ++c) {
    out[c] = reinterpret_cast<v8f>(_mm256_permute2f128_ps(u[c], u[4 + c], 0x20));
    out[4 + c] = reinterpret_cast<v8f>(_mm256_permute2f128_ps(u[c], u[4 + c], 0x31));
  }
}

// Gather for sub-blocks of 16 (Q6_K, Q3_K): four 8 x 8 transposes.
template <>
QUANTD_AVX2_INLINE void Gather<16>(const float* x0, const float* x1, VF* X) {
  v8f t[8];
  for (int h = 0; h < 2; ++h) {
    const float* x = h == 0 ? x0 : x1;
    for (int half = 0; half < 2; ++half) {
      Transpose8x8(x + 8 * half, 16, t);
      for (int c = 0; c < 8; ++c) X[8 * half + c].h[h] = t[c];
    }
  }
}

// MakeQkx2Quants for 16 sub-blocks of N values at once.
template <int N>
QUANTD_AVX2_INLINE void MakeQkx2QuantsV(int nmax, const VF* X, const VF* W, VI* L, VF* scale_out,
                                        VF* the_min, float rmin, float rdelta, int nstep,
                                        bool use_mad) {
  VF min = X[0], max = X[0];
  VF sum_w = W[0];
  VF sum_x = sum_w * X[0];
  for (int i = 1; i < N; ++i) {
    min = Select(X[i] < min, X[i], min);
    max = Select(X[i] > max, X[i], max);
    sum_w += W[i];
    sum_x += W[i] * X[i];
  }
  min = Select(min > 0.0f, VF{}, min);
  const VI degenerate = max == min;
  VF iscale = static_cast<float>(nmax) / (max - min);
  VF scale = 1.0f / iscale;
  VF best_error = {};
  for (int i = 0; i < N; ++i) {
    L[i] = ClampV(NearestIntV(iscale * (X[i] - min)), 0, nmax);
    VF diff = scale * ToFloat(L[i]) + min - X[i];
    diff = use_mad ? AbsV(diff) : diff * diff;
    best_error += W[i] * diff;
  }
  VI Laux[N];
  for (int is = 0; is <= nstep; ++is) {
    const float num = rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax);
    iscale = num / (max - min);  // min moves with the best fit so far
    VF sum_l = {}, sum_l2 = {}, sum_xl = {};
    for (int i = 0; i < N; ++i) {
      Laux[i] = ClampV(NearestIntV(iscale * (X[i] - min)), 0, nmax);
      const VF fl = ToFloat(Laux[i]);
      const VF w = W[i];
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * X[i];
    }
    const VF D = sum_w * sum_l2 - sum_l * sum_l;
    VF this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    VF this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    const VI pos = this_min > 0.0f;
    this_min = Select(pos, VF{}, this_min);
    this_scale = Select(pos, sum_xl / sum_l2, this_scale);
    VF cur_error = {};
    for (int i = 0; i < N; ++i) {
      VF diff = this_scale * ToFloat(Laux[i]) + this_min - X[i];
      diff = use_mad ? AbsV(diff) : diff * diff;
      cur_error += W[i] * diff;
    }
    const VI upd = (D > 0.0f) & (cur_error < best_error) & ~degenerate;
    if (!AnySet(upd)) continue;
    for (int i = 0; i < N; ++i) L[i] = Select(upd, Laux[i], L[i]);
    best_error = Select(upd, cur_error, best_error);
    scale = Select(upd, this_scale, scale);
    min = Select(upd, this_min, min);
  }
  for (int i = 0; i < N; ++i) L[i] = Select(degenerate, VI{}, L[i]);
  *scale_out = Select(degenerate, VF{}, scale);
  *the_min = -min;
}

// Lane-parallel max |x| and the signed value that reaches it first.
template <int N>
QUANTD_AVX2_INLINE void SignedAbsMax(const VF* X, VF* amax, VF* max) {
  *amax = VF{};
  *max = VF{};
  for (int i = 0; i < N; ++i) {
    const VF ax = AbsV(X[i]);
    const VI m = ax > *amax;
    *amax = Select(m, ax, *amax);
    *max = Select(m, X[i], *max);
  }
}

// MakeQxQuants (rmse_type 1, weights x^2) for 16 sub-blocks of N values:
// the scales, and instead of the levels the inverse scale they come from
// (the levels of a lane are ClampInt(NearestInt(best_iscale * x), -nmax,
// nmax - 1) + nmax, or 0 for the lanes of `zero`, the all-zero sub-blocks).
template <int N>
QUANTD_AVX2_INLINE void MakeQxQuantsV(int nmax, const VF* X, VF* scale_out, VF* best_iscale_out,
                                      VI* zero_out) {
  VF amax, max;
  SignedAbsMax<N>(X, &amax, &max);
  const VI zero = amax < kGroupMaxEps;
  VF iscale = static_cast<float>(-nmax) / max;
  VF sumlx = {}, suml2 = {};
  VF W[N], WX[N];  // w = x^2 and w*x, as the reference computes them
  for (int i = 0; i < N; ++i) {
    W[i] = X[i] * X[i];
    WX[i] = W[i] * X[i];
  }
  for (int i = 0; i < N; ++i) {
    const VF fl = ToFloat(ClampV(NearestIntV(iscale * X[i]), -nmax, nmax - 1));
    sumlx += WX[i] * fl;
    suml2 += W[i] * fl * fl;
  }
  VF scale = Select(suml2 != 0.0f, sumlx / suml2, VF{});
  VF best = scale * sumlx;
  // The levels are those of the last accepted inverse scale: remember it
  // per lane; the caller computes them once (the same products).
  VF best_iscale = iscale;
  const float lo = static_cast<float>(-nmax), hi = static_cast<float>(nmax - 1);
  // The sums of one candidate; `levels` rounds (and clamps) iscale * x.
  auto candidate_sums = [&](auto levels) QUANTD_AVX2_INLINE_LAMBDA {
    sumlx = VF{};
    suml2 = VF{};
    for (int i = 0; i < N; ++i) {
      const VF fl = levels(iscale * X[i]);
      sumlx += WX[i] * fl;
      suml2 += W[i] * fl * fl;
    }
  };
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float num = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is));
    iscale = num / max;
    // |iscale * x| <= |num| (1 + 2^-24)^2 < |num| (1 + 2^-22) = reach, as
    // |max| = max |x|. Below nmax - 1/2 the rounded level is inside
    // [-nmax + 1, nmax - 1] and no clamp acts; below nmax + 1/2 only the
    // upper one can. A clamp that cannot act changes no value, so it is left
    // out. (A lane whose max is 0 gets NaN or infinite products: an all-zero
    // sub-block, whose result is replaced by 0.)
    const float reach = -num * (1.0f + 1.0f / static_cast<float>(1 << 22));
    if (reach < hi + 0.5f) {
      candidate_sums([](VF f) QUANTD_AVX2_INLINE_LAMBDA { return RoundV(f); });
    } else if (reach < -lo + 0.5f) {
      candidate_sums([hi](VF f) QUANTD_AVX2_INLINE_LAMBDA { return MinV(RoundV(f), hi); });
    } else {
      candidate_sums([lo, hi](VF f) QUANTD_AVX2_INLINE_LAMBDA { return RoundClampV(f, lo, hi); });
    }
    const VI upd = (suml2 > 0.0f) & (sumlx * sumlx > best * suml2);
    if (!AnySet(upd)) continue;
    best_iscale = Select(upd, iscale, best_iscale);
    scale = Select(upd, sumlx / suml2, scale);
    best = Select(upd, scale * sumlx, best);
  }
  *scale_out = Select(zero, VF{}, scale);
  *best_iscale_out = best_iscale;
  *zero_out = zero;
}

// MakeQ3Quants (do_rmse) for 16 sub-blocks of N values. A lane whose pass
// changes nothing would change nothing in later passes either, so running
// the passes for all lanes until none changes matches the per-lane early exit.
template <int N>
QUANTD_AVX2_INLINE void MakeQ3QuantsV(int nmax, const VF* X, VI* L, VF* scale_out) {
  VF amax, max;
  SignedAbsMax<N>(X, &amax, &max);
  const VI zero = amax < kGroupMaxEps;
  const VF iscale = static_cast<float>(-nmax) / max;
  VF sumlx = {}, suml2 = {};
  for (int i = 0; i < N; ++i) {
    L[i] = ClampV(NearestIntV(iscale * X[i]), -nmax, nmax - 1);
    const VF w = X[i] * X[i];
    const VF fl = ToFloat(L[i]);
    sumlx += w * X[i] * fl;
    suml2 += w * fl * fl;
  }
  for (int itry = 0; itry < 5; ++itry) {
    VI changed = {};
    for (int i = 0; i < N; ++i) {
      const VF w = X[i] * X[i];
      const VF fL = ToFloat(L[i]);
      VF slx = sumlx - w * X[i] * fL;
      const VI c1 = slx > 0.0f;
      VF sl2 = suml2 - w * fL * fL;
      const VI new_l = ClampV(NearestIntV(X[i] * sl2 / slx), -nmax, nmax - 1);
      const VI c2 = c1 & (new_l != L[i]);
      const VF fn = ToFloat(new_l);
      slx += w * X[i] * fn;
      sl2 += w * fn * fn;
      const VI c3 = c2 & (sl2 > 0.0f) & (slx * slx * suml2 > sumlx * sumlx * sl2);
      L[i] = Select(c3, new_l, L[i]);
      sumlx = Select(c3, slx, sumlx);
      suml2 = Select(c3, sl2, suml2);
      changed |= c3;
    }
    if (!AnySet(changed)) break;
  }
  for (int i = 0; i < N; ++i) L[i] = Select(zero, VI{}, L[i] + nmax);
  *scale_out = Select(zero, VF{}, Select(suml2 > 0.0f, sumlx / suml2, VF{}));
}

// Inverse of Gather for the quantized levels.
template <int N, class T>
QUANTD_AVX2_INLINE void Scatter(const VI* L, T* out0, T* out1) {
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i < N; ++i) {
      out0[k * N + i] = static_cast<T>(Lane(L[i], k));
      out1[k * N + i] = static_cast<T>(Lane(L[i], k + 8));
    }
  }
}

template <int kBits, class Block>
QUANTD_AVX2 void QuantizeQkMinAvx2(const float* x, Block* y, int64_t n) {
  constexpr int kNmax = (1 << kBits) - 1;
  constexpr float kRmin = kBits == 4 ? -1.0f : -0.5f;
  constexpr int kNstep = kBits == 4 ? 20 : 15;
  uint8_t L[2][kQKK];
  float scales[kLanes], mins[kLanes];
  VF X[32], W[32];
  VI Lv[32];
  const int64_t nb = n / kQKK;
  for (int64_t b = 0; b < nb; b += 2) {
    // Two super-blocks per pass; an odd last block is paired with itself.
    const bool pair = b + 1 < nb;
    const float* x0 = x + b * kQKK;
    const float* x1 = pair ? x0 + kQKK : x0;
    Gather<32>(x0, x1, X);
    VF sum_x2 = {};
    for (int l = 0; l < 32; ++l) sum_x2 += X[l] * X[l];
    const VF av_x = SqrtV(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) W[l] = av_x + AbsV(X[l]);
    VF sc, mn;
    MakeQkx2QuantsV<32>(kNmax, X, W, Lv, &sc, &mn, kRmin, 0.1f, kNstep, false);
    std::memcpy(scales, &sc, sizeof(scales));
    std::memcpy(mins, &mn, sizeof(mins));
    Scatter<32>(Lv, L[0], L[1]);
    FinishQkMin<kBits>(x0, scales, mins, L[0], &y[b], QuantizeSpanAvx2);
    if (pair) FinishQkMin<kBits>(x1, scales + 8, mins + 8, L[1], &y[b + 1], QuantizeSpanAvx2);
  }
}

// IQ4_NL grid lookup for 8 lanes, the reference's BestIndexIq4nl: below the
// grid -> 0, above -> 15, else the upper neighbour mu (first level > x) or
// mu-1 if x is strictly closer to it. NaN gives 15 in both.
struct Iq4Pick {
  v8i index;
  v8f value;
};
QUANTD_AVX2_INLINE v8f Iq4Level(v8i i, __m256 tab_lo, __m256 tab_hi) {
  const __m256i ii = reinterpret_cast<__m256i>(i);
  const __m256 lo = _mm256_permutevar8x32_ps(tab_lo, ii);
  const __m256 hi = _mm256_permutevar8x32_ps(tab_hi, ii);
  const __m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(ii, _mm256_set1_epi32(7)));
  return reinterpret_cast<v8f>(_mm256_blendv_ps(lo, hi, upper));
}
QUANTD_AVX2_INLINE Iq4Pick BestIndexIq4nlV(v8f x, __m256 tab_lo, __m256 tab_hi) {
  v8i mu = v8i{} + 15;
  for (int k = 1; k < 15; ++k)
    mu += x < static_cast<float>(kIq4nlValues[k]);  // -1 per level above x
  const v8f lo = Iq4Level(mu - 1, tab_lo, tab_hi);
  const v8f hi = Iq4Level(mu, tab_lo, tab_hi);
  const v8i take_lo = x - lo < hi - x;
  Iq4Pick p{take_lo ? mu - 1 : mu, take_lo ? lo : hi};
  const v8i top = x >= static_cast<float>(kIq4nlValues[15]);
  p.index = top ? v8i{} + 15 : p.index;
  p.value = top ? v8f{} + static_cast<float>(kIq4nlValues[15]) : p.value;
  const v8i bottom = x <= static_cast<float>(kIq4nlValues[0]);
  p.index = bottom ? v8i{} : p.index;
  p.value = bottom ? v8f{} + static_cast<float>(kIq4nlValues[0]) : p.value;
  return p;
}

}  // namespace

namespace {

// The largest |x| bit pattern of 32 floats (integer max of the bits without
// the sign): the bits of max |x| when all are finite (non-negative floats
// order as their bits), at least 0x7f800000 when one is NaN or Inf.
QUANTD_AVX2_INLINE uint32_t AbsMaxBits32(const float* x) {
  const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
  __m256i m = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)), magnitude);
  for (int j = 8; j < 32; j += 8) {
    m = _mm256_max_epu32(
        m,
        _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + j)), magnitude));
  }
  __m128i h = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0x4e));
  h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0xb1));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(h));
}
constexpr uint32_t kNonFiniteBits = 0x7f800000u;

// A block's scale: the fp16 d it stores, that d's value (what dequantizing
// multiplies by) and the inverse scale the levels are computed with. The
// scale of a block is a chain of dependent scalar steps (divisions, fp16
// rounding), so the one-pass kernels compute the scales of several blocks
// together, then their levels, to keep the chains side by side.
struct BlockScale {
  float id;
  float dd;
  uint16_t d;
};

// One Q8_0 block of finite x with its scale (ScalesQ8_0): writes the block;
// levels (when non-null): the 32 stored levels as floats (element order, 8
// per register).
// roundf (half away from zero) is done exactly as trunc(v + copysign(p, v))
// with p the float just below 0.5: the sum never rounds up to the next
// integer unless |frac(v)| >= 0.5 (with 0.5 itself, v = +-0.5 would).
QUANTD_AVX2_INLINE void LevelsQ8_0(const float* x, const BlockScale& scale, BlockQ8_0* y,
                                   __m256* levels) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 below_half = _mm256_set1_ps(0.49999997f);  // 0.5 - 2^-25
  static_assert(0.49999997f < 0.5f && 0.49999997f + 0x1p-25f == 0.5f);
  const float id = scale.id;
  y->d = scale.d;
  const __m256 vid = _mm256_set1_ps(id);
  __m256i q[4];
  for (int k = 0; k < 4; ++k) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid);
    q[k] = _mm256_cvttps_epi32(_mm256_add_ps(v, _mm256_or_ps(below_half, _mm256_and_ps(v, sign))));
  }
  if (id > 0x1.fffffep127f) {
    // amax < ~3.7e-37: 1 / d overflows, and the reference converts x * id
    // (+-inf, or NaN for 0) to int8, which keeps the low byte of INT_MIN: 0.
    for (int k = 0; k < 4; ++k) q[k] = _mm256_setzero_si256();
  }
  // Otherwise |x * id| <= 127 (1 + 2^-21) < 127.5 (d's relative error is at
  // most 2^-22 even where d is subnormal and id finite), so q is in
  // [-127, 127]: the packs below never saturate, and q is the stored level.
  const __m256i p16a = _mm256_packs_epi32(q[0], q[1]);
  const __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
  __m256i p8 = _mm256_packs_epi16(p16a, p16b);
  // packs work per 128-bit lane: restore element order.
  p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y->qs), p8);
  if (levels != nullptr) {
    for (int k = 0; k < 4; ++k) levels[k] = _mm256_cvtepi32_ps(q[k]);
  }
}

// Packs 32 levels (each already masked to its bits, element order, 8 per
// register) as PackLegacyLevels: low nibbles into qs (element j low, j + 16
// high), and for 5 bits the fifth bits into qh (bit j of element j).
template <int kBits, class Block>
QUANTD_AVX2_INLINE void PackLegacy(const __m256i* q, Block* y) {
  const __m256i low = _mm256_set1_epi32(0x0F);
  const __m256i lo = _mm256_packs_epi32(_mm256_and_si256(q[0], low), _mm256_and_si256(q[1], low));
  const __m256i hi = _mm256_packs_epi32(_mm256_and_si256(q[2], low), _mm256_and_si256(q[3], low));
  const __m256i packed = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
  const __m256i bytes = _mm256_packus_epi16(packed, packed);
  const __m256i ordered =
      _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(y->qs), _mm256_castsi256_si128(ordered));
  if constexpr (kBits == 5) {
    uint32_t qh = 0;
    for (int k = 0; k < 4; ++k) {
      // Bit 4 of each level to the sign bit.
      qh |= static_cast<uint32_t>(
                _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(q[k], 27))))
            << (8 * k);
    }
    std::memcpy(y->qh, &qh, sizeof(qh));
  }
}

// Q4_0 / Q5_0 levels: trunc(x * id + kHalf + 0.5) capped at 2 * kHalf - 1
// (kHalf = 2^(bits-1)), as the reference; its int-to-byte packing keeps the
// low bits, which the mask does here (a level of INT_MIN, from an infinite
// id, stores 0). levels: the stored level minus kHalf, as floats (x * id >=
// -kHalf up to rounding, and trunc(0.5 - eps) is 0).
template <int kBits, class Block>
QUANTD_AVX2_INLINE void LevelsSigned(const float* x, const BlockScale& scale, Block* y,
                                     __m256* levels) {
  constexpr int kHalf = 1 << (kBits - 1);
  y->d = scale.d;
  const __m256 vid = _mm256_set1_ps(scale.id);
  const __m256 off = _mm256_set1_ps(static_cast<float>(kHalf) + 0.5f);
  const __m256i cap = _mm256_set1_epi32(2 * kHalf - 1);
  __m256i q[4];
  for (int k = 0; k < 4; ++k) {
    const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid), off);
    q[k] = _mm256_and_si256(_mm256_min_epi32(_mm256_cvttps_epi32(v), cap), cap);
  }
  PackLegacy<kBits>(q, y);
  if (levels != nullptr) {
    const __m256i half = _mm256_set1_epi32(kHalf);
    for (int k = 0; k < 4; ++k) levels[k] = _mm256_cvtepi32_ps(_mm256_sub_epi32(q[k], half));
  }
}

// AddQualitySums' 16 float lanes of one span, two registers per sum: lane
// k (register k / 8) takes the values i % 16 == k.
struct SpanSums {
  __m256 w2[2], e2[2], emax[2];
};

QUANTD_AVX2_INLINE void ClearSpanSums(SpanSums* s) {
  for (int h = 0; h < 2; ++h) s->w2[h] = s->e2[h] = s->emax[h] = _mm256_setzero_ps();
}

// Adds 32 values x (at a multiple of 16 from the span's start) and their
// stored values levels * d, in AddQualitySums' order and roundings.
QUANTD_AVX2_INLINE void AddBlockSums(const float* x, const __m256* levels, float d, SpanSums* s) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 vd = _mm256_set1_ps(d);
  for (int k = 0; k < 4; ++k) {
    const int h = k & 1;
    const __m256 w = _mm256_loadu_ps(x + 8 * k);
    const __m256 e = _mm256_sub_ps(w, _mm256_mul_ps(levels[k], vd));
    s->w2[h] = _mm256_add_ps(s->w2[h], _mm256_mul_ps(w, w));
    s->e2[h] = _mm256_add_ps(s->e2[h], _mm256_mul_ps(e, e));
    // emax > |e| ? emax : |e|, as the reference's select.
    s->emax[h] = _mm256_max_ps(s->emax[h], _mm256_andnot_ps(sign, e));
  }
}

// The scale of an affine block (Q4_1, Q5_1): the symmetric part (d as
// stored, its value, the inverse the levels use), the block's min as the
// levels use it, and the stored fp16 m with its value (what dequantizing
// adds).
struct AffineScale {
  BlockScale s;
  float min;
  float mm;
  uint16_t m;
};

// Adds 32 values x and their stored values levels * d (+ m for an affine
// block), as AddBlockSums; the dequantizer's q * d + m rounds twice.
QUANTD_AVX2_INLINE void AddBlockSums(const float* x, const __m256* levels, const BlockScale& scale,
                                     SpanSums* s) {
  AddBlockSums(x, levels, scale.dd, s);
}
QUANTD_AVX2_INLINE void AddBlockSums(const float* x, const __m256* levels, const AffineScale& scale,
                                     SpanSums* s) {
  const __m256 vd = _mm256_set1_ps(scale.s.dd);
  const __m256 vm = _mm256_set1_ps(scale.mm);
  __m256 back[4];
  for (int k = 0; k < 4; ++k) back[k] = _mm256_add_ps(_mm256_mul_ps(levels[k], vd), vm);
  AddBlockSums(x, back, 1.0f, s);  // back * 1 is back
}

// The span's lanes into the double totals, in lane order.
QUANTD_AVX2_INLINE void FlushSpanSums(const SpanSums& s, QualitySums* q) {
  alignas(32) float w2[16], e2[16], emax[16];
  for (int h = 0; h < 2; ++h) {
    _mm256_store_ps(w2 + 8 * h, s.w2[h]);
    _mm256_store_ps(e2 + 8 * h, s.e2[h]);
    _mm256_store_ps(emax + 8 * h, s.emax[h]);
  }
  for (int k = 0; k < 16; ++k) {
    q->sum_w2 += w2[k];
    q->sum_e2 += e2[k];
    q->max_abs = std::max(q->max_abs, static_cast<double>(emax[k]));
  }
}

// First non-finite of a block known to hold one.
inline int FirstNonFiniteInBlock(const float* x) {
  for (int j = 0; j < kQK; ++j) {
    uint32_t b;
    std::memcpy(&b, x + j, sizeof(b));
    if ((b & kNonFiniteBits) == kNonFiniteBits) return j;
  }
  return 0;  // not reached
}

// FloatToHalf (half.h) on 8 lanes: the same bits for every input.
QUANTD_AVX2_INLINE __m256i FloatToHalfV(__m256 f) {
  const __m256i bits = _mm256_castps_si256(f);
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x8000));
  const __m256i x = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  // x >= 65536 (inf or NaN): a quiet NaN keeping its payload, else inf.
  const __m256i nan = _mm256_cmpgt_epi32(x, _mm256_set1_epi32(0x7f800000));
  const __m256i h_big = _mm256_blendv_epi8(
      _mm256_set1_epi32(0x7c00),
      _mm256_or_si256(_mm256_set1_epi32(0x7e00),
                      _mm256_and_si256(_mm256_srli_epi32(x, 13), _mm256_set1_epi32(0x3ff))),
      nan);
  // Subnormal or zero result: add 0.5 and let the FPU round.
  const __m256i h_small = _mm256_sub_epi32(
      _mm256_castps_si256(_mm256_add_ps(_mm256_castsi256_ps(x), _mm256_set1_ps(0.5f))),
      _mm256_set1_epi32(0x3f000000));
  // Normal: rebias the exponent and round to nearest even.
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(x, 13), _mm256_set1_epi32(1));
  const __m256i h_normal = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(static_cast<int>(0xc8000fffu))), odd),
      13);
  const __m256i big = _mm256_cmpgt_epi32(x, _mm256_set1_epi32(0x477fffff));
  const __m256i small = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x38800000), x);
  __m256i h = _mm256_blendv_epi8(h_normal, h_small, small);
  h = _mm256_blendv_epi8(h, h_big, big);
  return _mm256_or_si256(sign, h);
}

// HalfToFloat (half.h) on 8 lanes (fp16 bits in the low 16 of each).
QUANTD_AVX2_INLINE __m256 HalfToFloatV(__m256i h) {
  const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x8000)), 16);
  const __m256i exp = _mm256_and_si256(_mm256_srli_epi32(h, 10), _mm256_set1_epi32(0x1f));
  const __m256i mant = _mm256_and_si256(h, _mm256_set1_epi32(0x3ff));
  const __m256i mant13 = _mm256_slli_epi32(mant, 13);
  const __m256i inf_nan = _mm256_or_si256(_mm256_set1_epi32(0x7f800000), mant13);
  const __m256i sub = _mm256_castps_si256(
      _mm256_mul_ps(_mm256_cvtepi32_ps(mant), _mm256_set1_ps(kHalfMinSubnormal)));
  const __m256i normal =
      _mm256_or_si256(_mm256_slli_epi32(_mm256_add_epi32(exp, _mm256_set1_epi32(112)), 23), mant13);
  __m256i r = _mm256_blendv_epi8(normal, sub, _mm256_cmpeq_epi32(exp, _mm256_setzero_si256()));
  r = _mm256_blendv_epi8(r, inf_nan, _mm256_cmpeq_epi32(exp, _mm256_set1_epi32(0x1f)));
  return _mm256_castsi256_ps(_mm256_or_si256(sign, r));
}

// The scales of up to 8 blocks from their d values (lanes past g: 0), all
// lanes at once: id = d != 0 ? 1 / d : 0, the fp16 d and its value.
QUANTD_AVX2_INLINE void ScalesFromD(__m256 d, int g, BlockScale* out) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 nonzero = _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_NEQ_OQ);
  // (Lanes with d = 0 divide 1 by 1, so no division by zero is raised.)
  const __m256 id = _mm256_and_ps(nonzero, _mm256_div_ps(one, _mm256_blendv_ps(one, d, nonzero)));
  const __m256i h = FloatToHalfV(d);
  const __m256 dd = HalfToFloatV(h);
  alignas(32) float ids[8], dds[8];
  alignas(32) uint32_t hs[8];
  _mm256_store_ps(ids, id);
  _mm256_store_ps(dds, dd);
  _mm256_store_si256(reinterpret_cast<__m256i*>(hs), h);
  for (int j = 0; j < g; ++j) out[j] = BlockScale{ids[j], dds[j], static_cast<uint16_t>(hs[j])};
}

// The scales of up to 8 Q8_0 blocks (bits: their max |x| bits, lanes past
// g 0): d = max |x| / 127.
QUANTD_AVX2_INLINE void ScalesQ8_0(const float* x, const uint32_t* bits, int g, BlockScale* out) {
  const __m256 amax = _mm256_loadu_ps(reinterpret_cast<const float*>(bits));
  ScalesFromD(_mm256_div_ps(amax, _mm256_set1_ps(127.0f)), g, out);
}

// The first of 32 values whose value (kAbs: magnitude) equals v's lanes
// (one does): the reference's running max |x|, min and max keep the first
// of equal values, and -0 and +0 are equal.
template <bool kAbs>
QUANTD_AVX2_INLINE float FirstEqual32(const float* x, __m256 v) {
  const __m256 sign = _mm256_set1_ps(kAbs ? -0.0f : 0.0f);
  uint32_t hits = 0;
  for (int k = 0; k < 4; ++k) {
    const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k));
    hits |= static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a, v, _CMP_EQ_OQ))) << (8 * k);
  }
  return x[__builtin_ctz(hits)];
}

// The scales of up to 8 blocks of a symmetric legacy type (Q4_0: 8, Q5_0:
// 16 levels each side): each block's first element of largest |x| (scalar),
// then d = max / -kHalf for all of them together.
template <int kHalf>
QUANTD_AVX2_INLINE void ScalesSigned(const float* x, const uint32_t* bits, int g, BlockScale* out) {
  alignas(32) float max[8] = {};
  for (int j = 0; j < g; ++j) {
    const float* xb = x + j * kQK;
    const float amax = __builtin_bit_cast(float, bits[j]);
    // An all-zero block keeps the reference's +0 whatever its zeros' signs.
    max[j] = amax > 0.0f ? FirstEqual32</*kAbs=*/true>(xb, _mm256_set1_ps(amax)) : 0.0f;
  }
  ScalesFromD(_mm256_div_ps(_mm256_load_ps(max), _mm256_set1_ps(-float{kHalf})), g, out);
}

// QuantizeRowChecked for a 32-value block type, 8 blocks at a time: their
// max |x| bits (which also tell a non-finite value), their scales (on the
// lanes), then per block the levels and (q non-null) the quality sums, span
// by span.
template <class Block, class Scale, void (*kScales)(const float*, const uint32_t*, int, Scale*),
          void (*kLevels)(const float*, const Scale&, Block*, __m256*)>
QUANTD_AVX2_INLINE int64_t QuantizeChecked(const float* x, Block* y, int64_t n, QualitySums* q) {
  constexpr int64_t kSpanBlocks = kQualitySpan / kQK;
  constexpr int kGroup = 8;
  static_assert(kQualitySpan % kQK == 0 && kQK % 16 == 0);
  // The input streams from memory (a job's weights are read once), and
  // the hardware prefetchers stop at each 4 KiB page: asking for the values
  // 2 KiB ahead keeps the loads from waiting at every page start (about 15%
  // fewer CPU seconds for a whole Q8_0 job). A prefetch past the end is a
  // harmless hint (the address is computed as an integer).
  constexpr int64_t kPrefetchAhead = 512;
  const int64_t nb = n / kQK;
  SpanSums s;
  __m256 levels[4];
  alignas(32) uint32_t bits[kGroup];
  Scale scale[kGroup];
  for (int64_t b0 = 0; b0 < nb; b0 += kSpanBlocks) {
    const int64_t b1 = std::min(nb, b0 + kSpanBlocks);
    ClearSpanSums(&s);
    for (int64_t g0 = b0; g0 < b1; g0 += kGroup) {
      const int g = static_cast<int>(std::min<int64_t>(kGroup, b1 - g0));
      for (int j = 0; j < g; ++j) {
        const float* xb = x + (g0 + j) * kQK;
        const uintptr_t ahead = reinterpret_cast<uintptr_t>(xb) + kPrefetchAhead * sizeof(float);
        _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T0);
        bits[j] = AbsMaxBits32(xb);
      }
      for (int j = 0; j < g; ++j) {
        if (bits[j] >= kNonFiniteBits) {
          return (g0 + j) * kQK + FirstNonFiniteInBlock(x + (g0 + j) * kQK);
        }
      }
      for (int j = g; j < kGroup; ++j) bits[j] = 0;
      kScales(x + g0 * kQK, bits, g, scale);
      for (int j = 0; j < g; ++j) {
        const float* xb = x + (g0 + j) * kQK;
        if (q == nullptr) {
          kLevels(xb, scale[j], &y[g0 + j], nullptr);
          continue;
        }
        kLevels(xb, scale[j], &y[g0 + j], levels);
        AddBlockSums(xb, levels, scale[j], &s);
      }
    }
    if (q != nullptr) FlushSpanSums(s, q);
  }
  return -1;
}

// QuantizeRow for a type with a one-pass kernel: that kernel, with the
// reference for each block holding a NaN or Inf (the reference's bytes for
// them, whatever they are).
template <class Block, int64_t (*kChecked)(const float*, Block*, int64_t, QualitySums*),
          void (*kRef)(const float*, Block*, int64_t)>
QUANTD_AVX2_INLINE void QuantizeWithRefForNonFinite(const float* x, Block* y, int64_t n) {
  const int64_t nb = n / kQK;
  int64_t b = 0;
  while (b < nb) {
    const int64_t bad = kChecked(x + b * kQK, y + b, (nb - b) * kQK, nullptr);
    if (bad < 0) return;
    // The kernel stopped at the group holding `bad`, perhaps before writing
    // the finite blocks ahead of it: those again, then the block itself.
    const int64_t bb = b + bad / kQK;
    if (bb > b) kChecked(x + b * kQK, y + b, (bb - b) * kQK, nullptr);
    kRef(x + bb * kQK, y + bb, kQK);
    b = bb + 1;
  }
}

}  // namespace

QUANTD_AVX2 int64_t QuantizeQ8_0Checked_avx2(const float* x, BlockQ8_0* y, int64_t n,
                                             QualitySums* q) {
  return QuantizeChecked<BlockQ8_0, BlockScale, ScalesQ8_0, LevelsQ8_0>(x, y, n, q);
}

QUANTD_AVX2 int64_t QuantizeQ4_0Checked_avx2(const float* x, BlockQ4_0* y, int64_t n,
                                             QualitySums* q) {
  return QuantizeChecked<BlockQ4_0, BlockScale, ScalesSigned<8>, LevelsSigned<4, BlockQ4_0>>(x, y,
                                                                                             n, q);
}

QUANTD_AVX2 void QuantizeQ8_0_avx2(const float* x, BlockQ8_0* y, int64_t n) {
  QuantizeWithRefForNonFinite<BlockQ8_0, QuantizeQ8_0Checked_avx2, QuantizeQ8_0_ref>(x, y, n);
}

QUANTD_AVX2 void QuantizeQ4_0_avx2(const float* x, BlockQ4_0* y, int64_t n) {
  QuantizeWithRefForNonFinite<BlockQ4_0, QuantizeQ4_0Checked_avx2, QuantizeQ4_0_ref>(x, y, n);
}

namespace {

// Min and max of 32 finite values broadcast to every lane.
QUANTD_AVX2_INLINE void MinMax32(const float* x, __m256* vmin, __m256* vmax) {
  __m256 lo = _mm256_loadu_ps(x), hi = lo;
  for (int k = 1; k < 4; ++k) {
    const __m256 v = _mm256_loadu_ps(x + 8 * k);
    lo = _mm256_min_ps(lo, v);
    hi = _mm256_max_ps(hi, v);
  }
  lo = _mm256_min_ps(lo, _mm256_permute2f128_ps(lo, lo, 1));
  hi = _mm256_max_ps(hi, _mm256_permute2f128_ps(hi, hi, 1));
  lo = _mm256_min_ps(lo, _mm256_shuffle_ps(lo, lo, 0x4e));
  hi = _mm256_max_ps(hi, _mm256_shuffle_ps(hi, hi, 0x4e));
  *vmin = _mm256_min_ps(lo, _mm256_shuffle_ps(lo, lo, 0xb1));
  *vmax = _mm256_max_ps(hi, _mm256_shuffle_ps(hi, hi, 0xb1));
}

// Q4_1 / Q5_1 scales of up to 8 finite blocks (bits unused): each block's
// min and max as the reference's running comparisons find them (the first
// of equal values, so the sign of a zero is the reference's), then
// d = (max - min) / kMaxQ, its inverse and fp16 form, and the fp16 min, for
// all blocks together.
template <int kMaxQ>
QUANTD_AVX2_INLINE void ScalesAffine(const float* x, const uint32_t* bits, int g,
                                     AffineScale* out) {
  alignas(32) float mins[8] = {}, maxs[8] = {};
  for (int j = 0; j < g; ++j) {
    const float* xb = x + j * kQK;
    __m256 vmin, vmax;
    MinMax32(xb, &vmin, &vmax);
    mins[j] = FirstEqual32</*kAbs=*/false>(xb, vmin);
    maxs[j] = FirstEqual32</*kAbs=*/false>(xb, vmax);
  }
  const __m256 vmin = _mm256_load_ps(mins);
  const __m256 d =
      _mm256_div_ps(_mm256_sub_ps(_mm256_load_ps(maxs), vmin), _mm256_set1_ps(float{kMaxQ}));
  BlockScale sym[8];
  ScalesFromD(d, g, sym);
  const __m256i m = FloatToHalfV(vmin);
  alignas(32) float mm[8];
  alignas(32) uint32_t ms[8];
  _mm256_store_ps(mm, HalfToFloatV(m));
  _mm256_store_si256(reinterpret_cast<__m256i*>(ms), m);
  for (int j = 0; j < g; ++j)
    out[j] = AffineScale{sym[j], mins[j], mm[j], static_cast<uint16_t>(ms[j])};
}

// Q4_1 / Q5_1 levels: trunc((x - min) * id + 0.5), capped at 15 for 4 bits
// (the reference caps only there), low bits kept. levels: the stored levels.
template <int kBits, class Block>
QUANTD_AVX2_INLINE void LevelsAffine(const float* x, const AffineScale& scale, Block* y,
                                     __m256* levels) {
  constexpr int kMaxQ = (1 << kBits) - 1;
  y->d = scale.s.d;
  y->m = scale.m;
  const __m256 vid = _mm256_set1_ps(scale.s.id);
  const __m256 vmin = _mm256_set1_ps(scale.min);
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256i mask = _mm256_set1_epi32(kMaxQ);
  __m256i q[4];
  for (int k = 0; k < 4; ++k) {
    const __m256 v =
        _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + 8 * k), vmin), vid), half);
    __m256i l = _mm256_cvttps_epi32(v);
    if constexpr (kBits == 4) l = _mm256_min_epi32(l, mask);
    q[k] = _mm256_and_si256(l, mask);
  }
  PackLegacy<kBits>(q, y);
  if (levels != nullptr) {
    for (int k = 0; k < 4; ++k) levels[k] = _mm256_cvtepi32_ps(q[k]);
  }
}

}  // namespace

QUANTD_AVX2 int64_t QuantizeQ5_0Checked_avx2(const float* x, BlockQ5_0* y, int64_t n,
                                             QualitySums* q) {
  return QuantizeChecked<BlockQ5_0, BlockScale, ScalesSigned<16>, LevelsSigned<5, BlockQ5_0>>(x, y,
                                                                                              n, q);
}

QUANTD_AVX2 int64_t QuantizeQ4_1Checked_avx2(const float* x, BlockQ4_1* y, int64_t n,
                                             QualitySums* q) {
  return QuantizeChecked<BlockQ4_1, AffineScale, ScalesAffine<15>, LevelsAffine<4, BlockQ4_1>>(
      x, y, n, q);
}

QUANTD_AVX2 int64_t QuantizeQ5_1Checked_avx2(const float* x, BlockQ5_1* y, int64_t n,
                                             QualitySums* q) {
  return QuantizeChecked<BlockQ5_1, AffineScale, ScalesAffine<31>, LevelsAffine<5, BlockQ5_1>>(
      x, y, n, q);
}

QUANTD_AVX2 void QuantizeQ5_0_avx2(const float* x, BlockQ5_0* y, int64_t n) {
  QuantizeWithRefForNonFinite<BlockQ5_0, QuantizeQ5_0Checked_avx2, QuantizeQ5_0_ref>(x, y, n);
}

QUANTD_AVX2 void QuantizeQ4_1_avx2(const float* x, BlockQ4_1* y, int64_t n) {
  QuantizeWithRefForNonFinite<BlockQ4_1, QuantizeQ4_1Checked_avx2, QuantizeQ4_1_ref>(x, y, n);
}

QUANTD_AVX2 void QuantizeQ5_1_avx2(const float* x, BlockQ5_1* y, int64_t n) {
  QuantizeWithRefForNonFinite<BlockQ5_1, QuantizeQ5_1Checked_avx2, QuantizeQ5_1_ref>(x, y, n);
}

// F16: F16C's round-to-nearest-even conversion, which FloatToHalf matches
// bit for bit (NaNs quieted with their top payload bits, overflow to inf);
// FloatToHalf itself where the CPU lacks F16C and for the tail.
__attribute__((target("avx2,f16c"))) void QuantizeF16_avx2(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  if (HostCpuFeatures().f16c) {
    for (; i + 16 <= n; i += 16) {
      const __m128i a =
          _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m128i b = _mm256_cvtps_ph(_mm256_loadu_ps(x + i + 8),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                          _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1));
    }
  }
  for (; i < n; ++i) y[i] = FloatToHalf(x[i]);
}

// BF16: FloatToBfloat16 on 16 lanes (round to nearest even by adding
// 0x7fff plus the lowest kept bit; NaNs keep their top bits and are quieted).
QUANTD_AVX2 void QuantizeBF16_avx2(const float* x, uint16_t* y, int64_t n) {
  const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
  const __m256i inf = _mm256_set1_epi32(0x7f800000);
  const __m256i round = _mm256_set1_epi32(0x7fff);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i quiet = _mm256_set1_epi32(0x40);
  auto convert = [&](__m256i b) QUANTD_AVX2_INLINE_LAMBDA {
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(b, magnitude), inf);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(b, 16), one);
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, round), odd), 16);
    const __m256i kept = _mm256_or_si256(_mm256_srli_epi32(b, 16), quiet);
    return _mm256_blendv_epi8(rounded, kept, nan);  // 0..0xffff per lane
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i a = convert(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
    const __m256i b = convert(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 8)));
    // packus works per 128-bit lane: a0 b0 a1 b1 -> a0 a1 b0 b1.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8));
  }
  for (; i < n; ++i) y[i] = FloatToBfloat16(x[i]);
}

namespace {

// The IQ4 block-scale search (quantize_row_iq4_nl_impl, ntry 7) on one
// 32-value block per lane under weights W (x^2 without an importance
// matrix); 0 for an all-zero block.
QUANTD_AVX2_INLINE VF Iq4BlockScaleV(const VF* X, const VF* W) {
  constexpr int kNtry = 7;
  const __m256 tab_lo = _mm256_setr_ps(-127, -104, -83, -65, -49, -35, -22, -10);
  const __m256 tab_hi = _mm256_setr_ps(1, 13, 25, 38, 53, 69, 89, 113);
  static_assert(kIq4nlValues[0] == -127 && kIq4nlValues[8] == 1 && kIq4nlValues[15] == 113);
  const float v0 = static_cast<float>(kIq4nlValues[0]);
  VF amax, max;
  SignedAbsMax<kQK>(X, &amax, &max);
  const VI zero = amax < kGroupMaxEps;
  // Sums over the block for the grid picked with inverse scale `id`.
  auto sums = [&](VF id, VF* sumqx, VF* sumq2) QUANTD_AVX2_INLINE_LAMBDA {
    *sumqx = VF{};
    *sumq2 = VF{};
    for (int j = 0; j < kQK; ++j) {
      const VF al = id * X[j];
      VF q;
      for (int h = 0; h < 2; ++h) q.h[h] = BestIndexIq4nlV(al.h[h], tab_lo, tab_hi).value;
      *sumqx += W[j] * q * X[j];
      *sumq2 += W[j] * q * q;
    }
  };
  VF d = -max / v0;
  VF sumqx, sumq2;
  sums(1.0f / d, &sumqx, &sumq2);
  d = sumqx / sumq2;
  VF best = d * sumqx;
  for (int itry = -kNtry; itry <= kNtry; ++itry) {
    sums(static_cast<float>(itry + kIq4nlValues[0]) / max, &sumqx, &sumq2);
    const VI upd = (sumq2 > 0.0f) & (sumqx * sumqx > best * sumq2);
    d = Select(upd, sumqx / sumq2, d);
    best = Select(upd, d * sumqx, best);
  }
  return Select(zero, VF{}, d);
}

}  // namespace

// IQ4_NL: one 32-value block per lane, 16 blocks per pass (the last pass
// repeats its final block to fill the lanes).
namespace {

// IQ4_NL with weights qw (an importance matrix, n column weights) or
// without (qw null: x^2), 16 blocks per pass.
QUANTD_AVX2_INLINE void QuantizeIQ4_NL(const float* x, BlockIQ4_NL* y, int64_t n, const float* qw) {
  const __m256 tab_lo = _mm256_setr_ps(-127, -104, -83, -65, -49, -35, -22, -10);
  const __m256 tab_hi = _mm256_setr_ps(1, 13, 25, 38, 53, 69, 89, 113);
  const int64_t nb = n / kQK;
  VF X[kQK], W[kQK];
  float weights[kQK];
  for (int64_t b0 = 0; b0 < nb; b0 += kLanes) {
    for (int k = 0; k < kLanes; ++k) {
      const int64_t b = std::min<int64_t>(b0 + k, nb - 1);
      const float* xb = x + b * kQK;
      for (int j = 0; j < kQK; ++j) SetLane(X[j], k, xb[j]);
      if (qw != nullptr) {
        Iq4Importance(xb, qw + b * kQK, kQK, weights);
        for (int j = 0; j < kQK; ++j) SetLane(W[j], k, weights[j]);
      }
    }
    if (qw == nullptr) {
      for (int j = 0; j < kQK; ++j) W[j] = X[j] * X[j];
    }
    const VF scale = Iq4BlockScaleV(X, W);
    const VF id = Select(scale != 0.0f, 1.0f / scale, VF{});
    VI L[kQK];
    for (int j = 0; j < kQK; ++j) {
      const VF al = id * X[j];
      for (int h = 0; h < 2; ++h) L[j].h[h] = BestIndexIq4nlV(al.h[h], tab_lo, tab_hi).index;
    }
    for (int k = 0; k < kLanes && b0 + k < nb; ++k) {
      BlockIQ4_NL& out = y[b0 + k];
      out.d = FloatToHalf(Lane(scale, k));
      for (int j = 0; j < kQK / 2; ++j) {
        out.qs[j] = static_cast<uint8_t>(Lane(L[j], k) | (Lane(L[j + kQK / 2], k) << 4));
      }
    }
  }
}

}  // namespace

QUANTD_AVX2 void QuantizeIQ4_NL_avx2(const float* x, BlockIQ4_NL* y, int64_t n) {
  QuantizeIQ4_NL(x, y, n, nullptr);
}

// With an importance matrix: the weights as the reference computes them
// (scalar, same order) on the lanes.
QUANTD_AVX2 void QuantizeIQ4_NL_weighted_avx2(const float* x, BlockIQ4_NL* y, int64_t n_per_row,
                                              const float* qw) {
  QuantizeIQ4_NL(x, y, n_per_row, qw);
}

// IQ4_XS without weights: the block-scale searches of two super-blocks (16
// blocks) per pass on the lanes, then each super-block's 6-bit scales and
// levels as the reference (FinishIQ4_XS).
QUANTD_AVX2 void QuantizeIQ4_XS_avx2(const float* x, BlockIQ4_XS* y, int64_t n) {
  constexpr int kBlocks = kQKK / kQK;  // 8 per super-block
  static_assert(kLanes == 2 * kBlocks);
  const int64_t nsb = n / kQKK;
  VF X[kQK];
  for (int64_t s0 = 0; s0 < nsb; s0 += 2) {
    for (int k = 0; k < kLanes; ++k) {
      const int64_t sb = std::min<int64_t>(s0 + k / kBlocks, nsb - 1);
      const float* xb = x + sb * kQKK + (k % kBlocks) * kQK;
      for (int j = 0; j < kQK; ++j) SetLane(X[j], k, xb[j]);
    }
    VF W[kQK];
    for (int j = 0; j < kQK; ++j) W[j] = X[j] * X[j];
    const VF scale = Iq4BlockScaleV(X, W);
    for (int64_t sb = s0; sb < s0 + 2 && sb < nsb; ++sb) {
      float scales[kBlocks];
      for (int b = 0; b < kBlocks; ++b)
        scales[b] = Lane(scale, static_cast<int>((sb - s0) * kBlocks + b));
      FinishIQ4_XS(x + sb * kQKK, scales, &y[sb]);
    }
  }
}

// IQ4_XS with an importance matrix: the weights as the reference computes
// them (scalar, same order), then as QuantizeIQ4_XS_avx2. Without one
// (qw null) the reference weighs x^2: QuantizeIQ4_XS_avx2 itself.
QUANTD_AVX2 void QuantizeIQ4_XS_weighted_avx2(const float* x, BlockIQ4_XS* y, int64_t n_per_row,
                                              const float* qw) {
  if (qw == nullptr) {
    QuantizeIQ4_XS_avx2(x, y, n_per_row);
    return;
  }
  constexpr int kBlocks = kQKK / kQK;  // 8 per super-block
  static_assert(kLanes == 2 * kBlocks);
  const int64_t nsb = n_per_row / kQKK;
  float weights[2][kQKK];
  VF X[kQK], W[kQK];
  for (int64_t s0 = 0; s0 < nsb; s0 += 2) {
    const int64_t s1 = std::min<int64_t>(s0 + 1, nsb - 1);
    Iq4Importance(x + s0 * kQKK, qw + s0 * kQKK, kQKK, weights[0]);
    Iq4Importance(x + s1 * kQKK, qw + s1 * kQKK, kQKK, weights[1]);
    Gather<kQK>(x + s0 * kQKK, x + s1 * kQKK, X);
    Gather<kQK>(weights[0], weights[1], W);
    const VF scale = Iq4BlockScaleV(X, W);
    for (int64_t sb = s0; sb < s0 + 2 && sb < nsb; ++sb) {
      float scales[kBlocks];
      for (int b = 0; b < kBlocks; ++b)
        scales[b] = Lane(scale, static_cast<int>((sb - s0) * kBlocks + b));
      FinishIQ4_XS(x + sb * kQKK, scales, &y[sb]);
    }
  }
}

// Weighted Q4_K/Q5_K (an importance matrix): the weights as the reference
// computes them (scalar, same order), the sub-block searches of two
// super-blocks per pass on the lanes (make_qkx3_quants is make_qkx2_quants
// with caller weights and other steps), then the reference's finish.
template <int kBits, class Block>
QUANTD_AVX2 void QuantizeQkMinWeightedAvx2(const float* x, Block* y, int64_t n_per_row,
                                           const float* qw) {
  constexpr int kNmax = (1 << kBits) - 1;
  uint8_t L[2][kQKK];
  float weights[2][kQKK], sw[2][kQKK / 32];
  float scales[kLanes], mins[kLanes];
  VF X[32], W[32];
  VI Lv[32];
  const int64_t nb = n_per_row / kQKK;
  for (int64_t b = 0; b < nb; b += 2) {
    const bool pair = b + 1 < nb;
    const int64_t b1 = pair ? b + 1 : b;
    const float* x0 = x + b * kQKK;
    const float* x1 = x + b1 * kQKK;
    QkMinImportance(x0, qw + b * kQKK, weights[0], sw[0]);
    QkMinImportance(x1, qw + b1 * kQKK, weights[1], sw[1]);
    Gather<32>(x0, x1, X);
    Gather<32>(weights[0], weights[1], W);
    VF sc, mn;
    MakeQkx2QuantsV<32>(kNmax, X, W, Lv, &sc, &mn, -0.9f, 0.05f, 36, false);
    std::memcpy(scales, &sc, sizeof(scales));
    std::memcpy(mins, &mn, sizeof(mins));
    Scatter<32>(Lv, L[0], L[1]);
    FinishQkMinWeighted<kBits>(x0, scales, mins, sw[0], L[0], &y[b], QuantizeSpanAvx2);
    if (pair) {
      FinishQkMinWeighted<kBits>(x1, scales + 8, mins + 8, sw[1], L[1], &y[b + 1],
                                 QuantizeSpanAvx2);
    }
  }
}

QUANTD_AVX2 void QuantizeQ4_K_weighted_avx2(const float* x, BlockQ4_K* y, int64_t n_per_row,
                                            const float* qw) {
  QuantizeQkMinWeightedAvx2<4>(x, y, n_per_row, qw);
}

QUANTD_AVX2 void QuantizeQ5_K_weighted_avx2(const float* x, BlockQ5_K* y, int64_t n_per_row,
                                            const float* qw) {
  QuantizeQkMinWeightedAvx2<5>(x, y, n_per_row, qw);
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
  VF X[16], W[16];
  VI Lv[16];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    Gather<16>(x, x + 128, X);
    for (int l = 0; l < 16; ++l) W[l] = AbsV(X[l]);
    VF sc, mn;
    MakeQkx2QuantsV<16>(3, X, W, Lv, &sc, &mn, -0.5f, 0.1f, 15, true);
    std::memcpy(scales, &sc, sizeof(sc));
    std::memcpy(mins, &mn, sizeof(mn));
    Scatter<16>(Lv, L, L + 128);
    FinishQ2_K(x, scales, mins, L, &y[b], QuantizeSpanAvx2);
  }
}

QUANTD_AVX2 void QuantizeQ3_K_avx2(const float* x, BlockQ3_K* y, int64_t n) {
  int8_t L[kQKK];
  float scales[16];
  VF X[16];
  VI Lv[16];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    Gather<16>(x, x + 128, X);
    VF sc;
    MakeQ3QuantsV<16>(4, X, Lv, &sc);
    std::memcpy(scales, &sc, sizeof(sc));
    Scatter<16>(Lv, L, L + 128);
    FinishQ3_K(x, scales, L, &y[b], QuantizeSpanAvx2);
  }
}

namespace {

// One Q6_K super-block: the 16 sub-block searches on the lanes, then the
// reference's finish on the values in their own order: per sub-block the
// levels x / d of FinishQ6_K's span, or where d is 0 the search's own levels
// (0 for an all-zero sub-block), then the packing. L: its 256 levels (0..63,
// the stored 6 bits).
QUANTD_AVX2_INLINE void QuantizeBlockQ6_K(const float* x, BlockQ6_K* y, int8_t* L) {
  alignas(32) float scales[16], best_iscale[16];
  alignas(32) int32_t zero[16];
  VF X[16];
  Gather<16>(x, x + 128, X);
  VF sc, bi;
  VI zv;
  MakeQxQuantsV<16>(32, X, &sc, &bi, &zv);
  std::memcpy(scales, &sc, sizeof(sc));
  std::memcpy(best_iscale, &bi, sizeof(bi));
  std::memcpy(zero, &zv, sizeof(zv));
  if (!SetQ6_KScales(scales, y)) {
    std::memset(L, 0, kQKK);  // the block stores no level; its sums read these
    return;
  }
  const float dh = HalfToFloat(y->d);
  for (int j = 0; j < 16; ++j) {
    const float d = dh * static_cast<float>(y->scales[j]);
    if (d != 0.0f) {
      QuantizeSpanAvx2(x + 16 * j, 0.0f, d, -32, 31, 32, reinterpret_cast<uint8_t*>(L + 16 * j),
                       16);
    } else if (zero[j] != 0) {
      std::memset(L + 16 * j, 0, 16);
    } else {
      QuantizeSpanScaledAvx2(x + 16 * j, best_iscale[j], L + 16 * j);
    }
  }
  PackQ6_K_avx2(L, y);
}

}  // namespace

QUANTD_AVX2 void QuantizeQ6_K_avx2(const float* x, BlockQ6_K* y, int64_t n) {
  int8_t L[kQKK];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) QuantizeBlockQ6_K(x, &y[b], L);
}

// Q6_K in one pass: per super-block the NaN/Inf check (max |x| bits of its
// 32-value groups), the quantizer, then (q non-null) the quality sums of its
// stored values, span by span. A stored value is (d * scale) * (level - 32),
// the dequantizer's expression, from the finish's levels and the block's d
// and scales (an all-zero block stores d = 0 and scales 0: values 0).
QUANTD_AVX2 int64_t QuantizeQ6_KChecked_avx2(const float* x, BlockQ6_K* y, int64_t n,
                                             QualitySums* q) {
  constexpr int64_t kSpanBlocks = kQualitySpan / kQKK;
  static_assert(kQualitySpan % kQKK == 0 && kQKK % 16 == 0);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i bias = _mm256_set1_epi32(32);
  const int64_t nb = n / kQKK;
  int8_t L[kQKK];
  SpanSums s;
  for (int64_t b0 = 0; b0 < nb; b0 += kSpanBlocks) {
    const int64_t b1 = std::min(nb, b0 + kSpanBlocks);
    ClearSpanSums(&s);
    for (int64_t b = b0; b < b1; ++b) {
      const float* xb = x + b * kQKK;
      for (int g = 0; g < kQKK; g += kQK) {
        // The next super-block's lines, while this one is searched.
        const uintptr_t ahead = reinterpret_cast<uintptr_t>(xb) + (kQKK + g) * sizeof(float);
        _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T0);
        if (AbsMaxBits32(xb + g) >= kNonFiniteBits) {
          return b * kQKK + g + FirstNonFiniteInBlock(xb + g);
        }
      }
      QuantizeBlockQ6_K(xb, &y[b], L);
      if (q == nullptr) continue;
      const float d = HalfToFloat(y[b].d);
      for (int k = 0; k < kQKK / 8; ++k) {  // AddQualitySums' lanes and order
        const int h = k & 1;
        const __m256 dl = _mm256_set1_ps(d * static_cast<float>(y[b].scales[k / 2]));
        int64_t l8;
        std::memcpy(&l8, L + 8 * k, sizeof(l8));
        const __m256 level =
            _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(l8)), bias));
        const __m256 w = _mm256_loadu_ps(xb + 8 * k);
        const __m256 e = _mm256_sub_ps(w, _mm256_mul_ps(dl, level));
        s.w2[h] = _mm256_add_ps(s.w2[h], _mm256_mul_ps(w, w));
        s.e2[h] = _mm256_add_ps(s.e2[h], _mm256_mul_ps(e, e));
        s.emax[h] = _mm256_max_ps(s.emax[h], _mm256_andnot_ps(sign, e));
      }
    }
    if (q != nullptr) FlushSpanSums(s, q);
  }
  return -1;
}

// PackQ6_K with 32 bytes per register (levels are 0..63, so the 16-bit
// shifts move no bit into a neighbouring byte that the masks keep).
QUANTD_AVX2 void PackQ6_K_avx2(const int8_t* L, BlockQ6_K* y) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int half = 0; half < 2; ++half) {
    const int8_t* l = L + 128 * half;
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(l));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(l + 32));
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(l + 64));
    const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(l + 96));
    const __m256i ql0 =
        _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_slli_epi16(_mm256_and_si256(c, m4), 4));
    const __m256i ql1 =
        _mm256_or_si256(_mm256_and_si256(b, m4), _mm256_slli_epi16(_mm256_and_si256(e, m4), 4));
    const __m256i qh = _mm256_or_si256(
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), _mm256_set1_epi8(0x03)),
                        _mm256_and_si256(_mm256_srli_epi16(b, 2), _mm256_set1_epi8(0x0c))),
        _mm256_or_si256(
            _mm256_and_si256(c, _mm256_set1_epi8(0x30)),
            _mm256_and_si256(_mm256_slli_epi16(e, 2), _mm256_set1_epi8(static_cast<char>(0xc0)))));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y->ql + 64 * half), ql0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y->ql + 64 * half + 32), ql1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y->qh + 32 * half), qh);
  }
}

}  // namespace quantd::core::gguf::internal
