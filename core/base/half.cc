#include "quantd/core/base/half.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "quantd/core/base/cpu_features.h"
#include "quantd/core/run_context.h"
#include "simd_convert.h"

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

void Bfloat16ToFloatSpan_ref(const uint16_t* in, float* out, size_t n) {
  // Plain loop: the compiler vectorises the shift (SSE2 at the baseline).
  uint32_t* o = reinterpret_cast<uint32_t*>(out);
  for (size_t i = 0; i < n; ++i) o[i] = static_cast<uint32_t>(in[i]) << 16;
}

#ifdef QUANTD_X86
namespace {

using simd::F16cActive;

__attribute__((target("avx2,f16c"))) void FloatToHalfSpan_f16c(const float* in, uint16_t* out,
                                                               size_t n, NarrowingStats* stats) {
  simd::HalfNarrower narrow;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), narrow(_mm256_loadu_ps(in + i)));
  }
  narrow.AddTo(stats);
  FloatToHalfSpan_ref(in + i, out + i, n - i, stats);
}

__attribute__((target("avx2"))) void Bfloat16ToFloatSpan_avx2(const uint16_t* in, float* out,
                                                              size_t n) {
  const simd::LoadBfloat16 load;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, load(reinterpret_cast<const unsigned char*>(in + i)));
  }
  Bfloat16ToFloatSpan_ref(in + i, out + i, n - i);
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

// Eight lanes of running extremes and of counts (each lane's mask
// subtracted: -1 per hit), folded into *stats every 2^24 values and at the
// end; returns how many values it read (a multiple of 8), the caller scans
// the tail. A non-finite lane is made a NaN (all bits set) before the
// extremes: vminps/vmaxps return their second operand, the running value,
// when the first is a NaN, so those lanes drop out without a blend.
template <typename Load>  // simd_convert.h
__attribute__((target("avx2,f16c"))) size_t ScanRangeAvx2(const unsigned char* x, size_t n,
                                                          Load load, FloatRangeStats* stats) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 all_ones = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  const __m256 finite_max = _mm256_set1_ps(std::numeric_limits<float>::max());
  const __m256 flush_limit = _mm256_set1_ps(kHalfFlushLimit);
  const __m256 zero = _mm256_setzero_ps();
  __m256 lo = _mm256_set1_ps(INFINITY), hi = _mm256_set1_ps(-INFINITY);
  __m256 max_abs = zero, max_flushed = zero;
  FloatRangeStats& s = *stats;
  constexpr size_t kFold = size_t{1} << 24;  // values per fold: the lane counts stay far from 2^31
  const size_t n8 = n & ~size_t{7};
  size_t i = 0;
  while (i < n8) {
    const size_t begin = i, end = std::min(n8, i + kFold);
    __m256i finite = _mm256_setzero_si256(), zeros = finite, flushed = finite;
    for (; i < end; i += 8) {
      const __m256 v = load(x + i * Load::kSize);
      const __m256 a = _mm256_and_ps(v, abs_mask);
      const __m256 fin = _mm256_cmp_ps(a, finite_max, _CMP_LE_OQ);  // false for NaN and inf
      const __m256 bad = _mm256_xor_ps(fin, all_ones);
      lo = _mm256_min_ps(_mm256_or_ps(v, bad), lo);
      hi = _mm256_max_ps(_mm256_or_ps(v, bad), hi);
      max_abs = _mm256_max_ps(_mm256_or_ps(a, bad), max_abs);
      const __m256 z = _mm256_cmp_ps(v, zero, _CMP_EQ_OQ);
      const __m256 tiny = _mm256_andnot_ps(z, _mm256_cmp_ps(a, flush_limit, _CMP_LE_OQ));
      max_flushed = _mm256_max_ps(_mm256_and_ps(a, tiny), max_flushed);
      finite = _mm256_sub_epi32(finite, _mm256_castps_si256(fin));
      zeros = _mm256_sub_epi32(zeros, _mm256_castps_si256(z));
      flushed = _mm256_sub_epi32(flushed, _mm256_castps_si256(tiny));
    }
    alignas(32) uint32_t f[8], z[8], t[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(f), finite);
    _mm256_store_si256(reinterpret_cast<__m256i*>(z), zeros);
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), flushed);
    uint64_t finite_count = 0;
    for (int k = 0; k < 8; ++k) {
      finite_count += f[k];
      s.zeros += z[k];
      s.flushed += t[k];
    }
    s.non_finite += (end - begin) - finite_count;
  }
  alignas(32) float l[8], h[8], m[8], f[8];
  _mm256_store_ps(l, lo);
  _mm256_store_ps(h, hi);
  _mm256_store_ps(m, max_abs);
  _mm256_store_ps(f, max_flushed);
  for (int k = 0; k < 8; ++k) {
    s.min = l[k] < s.min ? l[k] : s.min;
    s.max = h[k] > s.max ? h[k] : s.max;
    s.max_abs = m[k] > s.max_abs ? m[k] : s.max_abs;
    s.max_flushed = f[k] > s.max_flushed ? f[k] : s.max_flushed;
  }
  return n8;
}

}  // namespace

void ScanFloatRange(const float* x, size_t n, FloatRangeStats* stats) {
  if (ActiveCpuLevel() >= CpuLevel::kAvx2) {
    const size_t done =
        ScanRangeAvx2(reinterpret_cast<const unsigned char*>(x), n, simd::LoadFloat(), stats);
    return ScanFloatRange_ref(x + done, n - done, stats);
  }
  ScanFloatRange_ref(x, n, stats);
}

void FloatToHalfSpan(const float* in, uint16_t* out, size_t n, NarrowingStats* stats) {
  if (F16cActive()) return FloatToHalfSpan_f16c(in, out, n, stats);
  FloatToHalfSpan_ref(in, out, n, stats);
}

void HalfToFloatSpan(const uint16_t* in, float* out, size_t n) {
  if (F16cActive()) return HalfToFloatSpan_f16c(in, out, n);
  HalfToFloatSpan_ref(in, out, n);
}

void Bfloat16ToFloatSpan(const uint16_t* in, float* out, size_t n) {
  if (ActiveCpuLevel() >= CpuLevel::kAvx2) return Bfloat16ToFloatSpan_avx2(in, out, n);
  Bfloat16ToFloatSpan_ref(in, out, n);
}
#else
void Bfloat16ToFloatSpan(const uint16_t* in, float* out, size_t n) {
  Bfloat16ToFloatSpan_ref(in, out, n);
}
void ScanFloatRange(const float* x, size_t n, FloatRangeStats* stats) {
  ScanFloatRange_ref(x, n, stats);
}
void FloatToHalfSpan(const float* in, uint16_t* out, size_t n, NarrowingStats* stats) {
  FloatToHalfSpan_ref(in, out, n, stats);
}
void HalfToFloatSpan(const uint16_t* in, float* out, size_t n) { HalfToFloatSpan_ref(in, out, n); }
#endif

namespace {

// 16-bit values from byte `done` on, widened 8 at a time on the stack,
// through the reference (the tail after a vector scan, or all of them).
template <typename Widen>
void ScanWidenedRef(const unsigned char* x, size_t done, size_t n, Widen widen,
                    FloatRangeStats* stats) {
  float v[8];
  for (; done < n; done += 8) {
    const size_t m = std::min<size_t>(8, n - done);
    for (size_t k = 0; k < m; ++k) {
      uint16_t h;
      std::memcpy(&h, x + 2 * (done + k), 2);
      v[k] = widen(h);
    }
    ScanFloatRange_ref(v, m, stats);
  }
}

}  // namespace

void ScanBfloat16Range(const void* x, size_t n, FloatRangeStats* stats) {
  const auto* p = static_cast<const unsigned char*>(x);
  size_t done = 0;
#ifdef QUANTD_X86
  if (ActiveCpuLevel() >= CpuLevel::kAvx2) {
    done = ScanRangeAvx2(p, n, simd::LoadBfloat16(), stats);
  }
#endif
  ScanWidenedRef(p, done, n, Bfloat16ToFloat, stats);
}

void ScanHalfRange(const void* x, size_t n, FloatRangeStats* stats) {
  const auto* p = static_cast<const unsigned char*>(x);
  size_t done = 0;
#ifdef QUANTD_X86
  if (F16cActive()) done = ScanRangeAvx2(p, n, simd::LoadHalf(), stats);
#endif
  ScanWidenedRef(p, done, n, HalfToFloat, stats);
}

void ScanFloatRange(const float* x, size_t n, const RunContext& ctx, FloatRangeStats* stats) {
  constexpr size_t kPiece = size_t{1} << 20;
  const int64_t pieces = static_cast<int64_t>((n + kPiece - 1) / kPiece);
  std::vector<FloatRangeStats> part(static_cast<size_t>(pieces));
  ctx.ParallelFor(pieces, [&](int64_t i, int) {
    const size_t b = static_cast<size_t>(i) * kPiece;
    ScanFloatRange(x + b, std::min(kPiece, n - b), &part[static_cast<size_t>(i)]);
  });
  for (const FloatRangeStats& p : part) MergeFloatRange(p, stats);
}

void MergeFloatRange(const FloatRangeStats& p, FloatRangeStats* into) {
  FloatRangeStats& s = *into;  // as the scan folds its lanes
  s.non_finite += p.non_finite;
  s.zeros += p.zeros;
  s.flushed += p.flushed;
  s.max_flushed = p.max_flushed > s.max_flushed ? p.max_flushed : s.max_flushed;
  s.min = p.min < s.min ? p.min : s.min;
  s.max = p.max > s.max ? p.max : s.max;
  s.max_abs = p.max_abs > s.max_abs ? p.max_abs : s.max_abs;
}

namespace {

constexpr size_t kNarrowChunk = size_t{1} << 16;  // floats per task of the threaded narrowings

}  // namespace

void FloatToHalfSpan(const float* in, uint16_t* out, size_t n, const RunContext& ctx,
                     NarrowingStats* stats) {
  const size_t chunks = (n + kNarrowChunk - 1) / kNarrowChunk;
  std::vector<NarrowingStats> part(chunks);
  ctx.ParallelFor(static_cast<int64_t>(chunks), [&](int64_t c, int) {
    const size_t b = static_cast<size_t>(c) * kNarrowChunk, e = std::min(n, b + kNarrowChunk);
    FloatToHalfSpan(in + b, out + b, e - b, &part[static_cast<size_t>(c)]);
  });
  for (const NarrowingStats& p : part) stats->Add(p);
}

void FloatToHalfInPlace(void* data, size_t n, const RunContext& ctx, NarrowingStats* stats) {
  constexpr size_t kChunk = kNarrowChunk;
  constexpr size_t kPiece = 2048;  // floats narrowed through the stack at a time
  auto* bytes = static_cast<unsigned char*>(data);
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<NarrowingStats> part(chunks);
  // Chunk c reads bytes [4cK, 4(c+1)K) and writes [2cK, 2(c+1)K): the floats
  // of chunk c / 2 (read in the round before), and within the chunk only
  // floats already read (pieces go through the stack, so the kernel's input
  // and output never overlap).
  auto narrow = [&](size_t c) {
    const size_t b = c * kChunk, e = std::min(n, b + kChunk);
    uint16_t halves[kPiece];
    for (size_t i = b; i < e; i += kPiece) {
      const size_t m = std::min(kPiece, e - i);
      FloatToHalfSpan(reinterpret_cast<const float*>(bytes + 4 * i), halves, m, &part[c]);
      std::memcpy(bytes + 2 * i, halves, 2 * m);
    }
  };
  if (chunks > 0) narrow(0);
  // Round k runs chunks [2^(k-1), 2^k): they write no further than byte
  // 2 * 2^k * K = 4 * 2^(k-1) * K, where the round's own floats begin.
  for (size_t lo = 1; lo < chunks; lo *= 2) {
    const size_t hi = std::min(chunks, 2 * lo);
    ctx.ParallelFor(static_cast<int64_t>(hi - lo),
                    [&](int64_t i, int) { narrow(lo + static_cast<size_t>(i)); });
  }
  for (const NarrowingStats& p : part) stats->Add(p);
}

}  // namespace quantd::core
