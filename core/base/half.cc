#include "quantd/core/base/half.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "quantd/core/base/cpu_features.h"
#include "quantd/core/run_context.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QUANTD_X86 1
#endif

namespace quantd::core {

void FloatToHalfSpan_ref(const float* in, uint16_t* out, size_t n, NarrowingStats* stats) {
  uint64_t clamped = 0, flushed = 0;
  for (size_t i = 0; i < n; ++i) {
    float v = in[i];
    float a = std::fabs(v);
    if (a > kHalfMax && a != INFINITY && !std::isnan(a)) {
      v = std::copysign(kHalfMax, v);
      ++clamped;
    }
    uint16_t h = FloatToHalf(v);
    flushed += (a != 0.0f) & ((h & 0x7fffu) == 0);
    out[i] = h;
  }
  stats->clamped += clamped;
  stats->flushed += flushed;
}

void HalfToFloatSpan_ref(const uint16_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

void ScanFloatRange_ref(const float* x, size_t n, FloatRangeStats* stats) {
  FloatRangeStats& s = *stats;
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float a = std::fabs(v);
    if (!(a <= std::numeric_limits<float>::max())) {
      ++s.non_finite;
      continue;
    }
    s.min = v < s.min ? v : s.min;
    s.max = v > s.max ? v : s.max;
    s.max_abs = a > s.max_abs ? a : s.max_abs;
    s.zeros += v == 0.0f;
    if (a <= kHalfFlushLimit && a != 0.0f) {
      ++s.flushed;
      s.max_flushed = a > s.max_flushed ? a : s.max_flushed;
    }
  }
}

void Bfloat16ToFloatSpan(const uint16_t* in, float* out, size_t n) {
  // Plain loop: the compiler vectorises the shift.
  uint32_t* o = reinterpret_cast<uint32_t*>(out);
  for (size_t i = 0; i < n; ++i) o[i] = static_cast<uint32_t>(in[i]) << 16;
}

#ifdef QUANTD_X86
namespace {

// The F16C kernels run at the AVX2 level when the CPU also has F16C.
bool UseF16c() { return ActiveCpuLevel() >= CpuLevel::kAvx2 && HostCpuFeatures().f16c; }

__attribute__((target("avx2,f16c"))) void FloatToHalfSpan_f16c(const float* in, uint16_t* out,
                                                               size_t n, NarrowingStats* stats) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 max_half = _mm256_set1_ps(kHalfMax);
  const __m256 inf = _mm256_set1_ps(INFINITY);
  // |x| <= 2^-25 rounds to zero under round-to-nearest-even.
  const __m256 zero_limit = _mm256_set1_ps(kHalfFlushLimit);
  const __m256 zero = _mm256_setzero_ps();
  __m256i clamped = _mm256_setzero_si256();
  __m256i flushed = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(in + i);
    __m256 a = _mm256_and_ps(v, abs_mask);
    __m256 big =
        _mm256_and_ps(_mm256_cmp_ps(a, max_half, _CMP_GT_OQ), _mm256_cmp_ps(a, inf, _CMP_LT_OQ));
    __m256 tiny = _mm256_and_ps(_mm256_cmp_ps(a, zero_limit, _CMP_LE_OQ),
                                _mm256_cmp_ps(a, zero, _CMP_NEQ_OQ));
    // Clamp: keep the sign bit of v, set the magnitude to 65504.
    v = _mm256_blendv_ps(v, _mm256_or_ps(max_half, _mm256_andnot_ps(abs_mask, v)), big);
    clamped = _mm256_sub_epi32(clamped, _mm256_castps_si256(big));
    flushed = _mm256_sub_epi32(flushed, _mm256_castps_si256(tiny));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  alignas(32) uint32_t c[8], f[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(c), clamped);
  _mm256_store_si256(reinterpret_cast<__m256i*>(f), flushed);
  for (int k = 0; k < 8; ++k) {
    stats->clamped += c[k];
    stats->flushed += f[k];
  }
  FloatToHalfSpan_ref(in + i, out + i, n - i, stats);
}

__attribute__((target("avx2,f16c"))) void HalfToFloatSpan_f16c(const uint16_t* in, float* out,
                                                               size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  HalfToFloatSpan_ref(in + i, out + i, n - i);
}

// Eight lanes of running extremes and popcounts of the lane masks; the lanes
// are folded into *stats at the end, then the tail runs the reference.
__attribute__((target("avx2,popcnt"))) void ScanFloatRange_avx2(const float* x, size_t n,
                                                                FloatRangeStats* stats) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 finite_max = _mm256_set1_ps(std::numeric_limits<float>::max());
  const __m256 flush_limit = _mm256_set1_ps(kHalfFlushLimit);
  const __m256 zero = _mm256_setzero_ps();
  const __m256 pos_inf = _mm256_set1_ps(INFINITY);
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  __m256 lo = pos_inf, hi = neg_inf, max_abs = zero, max_flushed = zero;
  uint64_t finite = 0, zeros = 0, flushed = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 a = _mm256_and_ps(v, abs_mask);
    const __m256 fin = _mm256_cmp_ps(a, finite_max, _CMP_LE_OQ);  // false for NaN and inf
    finite += static_cast<uint64_t>(_mm_popcnt_u32(_mm256_movemask_ps(fin)));
    // min_ps(v, lo) is (v < lo ? v : lo), the reference's comparison.
    lo = _mm256_min_ps(_mm256_blendv_ps(pos_inf, v, fin), lo);
    hi = _mm256_max_ps(_mm256_blendv_ps(neg_inf, v, fin), hi);
    max_abs = _mm256_max_ps(_mm256_and_ps(a, fin), max_abs);
    zeros += static_cast<uint64_t>(
        _mm_popcnt_u32(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_EQ_OQ))));
    const __m256 tiny = _mm256_and_ps(_mm256_cmp_ps(a, flush_limit, _CMP_LE_OQ),
                                      _mm256_cmp_ps(a, zero, _CMP_NEQ_OQ));
    flushed += static_cast<uint64_t>(_mm_popcnt_u32(_mm256_movemask_ps(tiny)));
    max_flushed = _mm256_max_ps(_mm256_and_ps(a, tiny), max_flushed);
  }
  alignas(32) float l[8], h[8], m[8], f[8];
  _mm256_store_ps(l, lo);
  _mm256_store_ps(h, hi);
  _mm256_store_ps(m, max_abs);
  _mm256_store_ps(f, max_flushed);
  FloatRangeStats& s = *stats;
  for (int k = 0; k < 8; ++k) {
    s.min = l[k] < s.min ? l[k] : s.min;
    s.max = h[k] > s.max ? h[k] : s.max;
    s.max_abs = m[k] > s.max_abs ? m[k] : s.max_abs;
    s.max_flushed = f[k] > s.max_flushed ? f[k] : s.max_flushed;
  }
  s.non_finite += i - finite;
  s.zeros += zeros;
  s.flushed += flushed;
  ScanFloatRange_ref(x + i, n - i, stats);
}

}  // namespace

void ScanFloatRange(const float* x, size_t n, FloatRangeStats* stats) {
  if (ActiveCpuLevel() >= CpuLevel::kAvx2) return ScanFloatRange_avx2(x, n, stats);
  ScanFloatRange_ref(x, n, stats);
}

void FloatToHalfSpan(const float* in, uint16_t* out, size_t n, NarrowingStats* stats) {
  if (UseF16c()) return FloatToHalfSpan_f16c(in, out, n, stats);
  FloatToHalfSpan_ref(in, out, n, stats);
}

void HalfToFloatSpan(const uint16_t* in, float* out, size_t n) {
  if (UseF16c()) return HalfToFloatSpan_f16c(in, out, n);
  HalfToFloatSpan_ref(in, out, n);
}
#else
void ScanFloatRange(const float* x, size_t n, FloatRangeStats* stats) {
  ScanFloatRange_ref(x, n, stats);
}
void FloatToHalfSpan(const float* in, uint16_t* out, size_t n, NarrowingStats* stats) {
  FloatToHalfSpan_ref(in, out, n, stats);
}
void HalfToFloatSpan(const uint16_t* in, float* out, size_t n) { HalfToFloatSpan_ref(in, out, n); }
#endif

void ScanFloatRange(const float* x, size_t n, const RunContext& ctx, FloatRangeStats* stats) {
  constexpr size_t kPiece = size_t{1} << 20;
  const int64_t pieces = static_cast<int64_t>((n + kPiece - 1) / kPiece);
  std::vector<FloatRangeStats> part(static_cast<size_t>(pieces));
  ctx.ParallelFor(pieces, [&](int64_t i, int) {
    const size_t b = static_cast<size_t>(i) * kPiece;
    ScanFloatRange(x + b, std::min(kPiece, n - b), &part[static_cast<size_t>(i)]);
  });
  FloatRangeStats& s = *stats;
  for (const FloatRangeStats& p : part) {  // as the scan folds its lanes
    s.non_finite += p.non_finite;
    s.zeros += p.zeros;
    s.flushed += p.flushed;
    s.max_flushed = p.max_flushed > s.max_flushed ? p.max_flushed : s.max_flushed;
    s.min = p.min < s.min ? p.min : s.min;
    s.max = p.max > s.max ? p.max : s.max;
    s.max_abs = p.max_abs > s.max_abs ? p.max_abs : s.max_abs;
  }
}

}  // namespace quantd::core
