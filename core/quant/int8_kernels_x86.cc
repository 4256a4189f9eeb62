// x86-64 INT8 kernels: AVX2 (compiled with a target attribute; called only
// at CpuLevel::kAvx2). The code kernel runs Int8Code's float operations in
// the same order (divps and the magic-number rounding are correctly rounded
// like the scalar ones; no FMA), so it writes the scalar variant's bytes.
#include "int8_kernels.h"

#include "int4_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace quantd::core::quant::int8 {
namespace {

// Int8Code on 8 values, as int32. maxps(x, c) = x > c ? x : c and minps(x, c)
// = x < c ? x : c select what the scalar comparisons select (no NaN here).
__attribute__((target("avx2"))) inline __m256i Code8(__m256 w, __m256 s, __m256 z, __m256 lo,
                                                     __m256 hi) {
  const __m256 pre = _mm256_set1_ps(kPreClamp), magic = _mm256_set1_ps(kRoundMagic);
  __m256 x = _mm256_div_ps(w, s);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-kPreClamp)), pre);
  __m256 q = _mm256_add_ps(_mm256_sub_ps(_mm256_add_ps(x, magic), magic), z);
  q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
  return _mm256_cvttps_epi32(q);
}

// 32 int32 codes in [-128, 255] to bytes: int8 with signed saturation,
// uint8 with unsigned (neither saturates inside the type's range). packs
// work per 128-bit lane; the permute restores the order.
template <bool kSigned>
__attribute__((target("avx2"))) inline __m256i Pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  const __m256i bytes = kSigned ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// 8 int32 codes to 8 bytes in the low half.
template <bool kSigned>
__attribute__((target("avx2"))) inline __m128i Pack8(__m256i a) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  return kSigned ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
}

// A per-column parameter vector, or the one broadcast to every column.
template <bool kPerColumn>
__attribute__((target("avx2"))) inline __m256 Param(const float* p, __m256 one) {
  if constexpr (kPerColumn) return _mm256_loadu_ps(p);
  return one;
}

template <bool kSigned, bool kPerColumn>
__attribute__((target("avx2"))) void CodeRowsAvx2T(const float* src, int64_t ld, int rows,
                                                   int width, const float* scale, const float* zp,
                                                   const CodeRange& r, uint8_t* dst, int64_t ldd) {
  const __m256 lo = _mm256_set1_ps(r.lo), hi = _mm256_set1_ps(r.hi);
  const __m256 s1 = _mm256_set1_ps(scale[0]), z1 = _mm256_set1_ps(zp[0]);
  const int step = kPerColumn ? 1 : 0;
  for (int i = 0; i < rows; ++i) {
    const float* v = src + i * ld;
    uint8_t* o = dst + i * ldd;
    int j = 0;
    for (; j + 32 <= width; j += 32) {
      __m256i q[4];
      for (int t = 0; t < 4; ++t) {
        q[t] = Code8(_mm256_loadu_ps(v + j + 8 * t), Param<kPerColumn>(scale + j + 8 * t, s1),
                     Param<kPerColumn>(zp + j + 8 * t, z1), lo, hi);
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + j),
                          Pack32<kSigned>(q[0], q[1], q[2], q[3]));
    }
    for (; j + 8 <= width; j += 8) {
      _mm_storel_epi64(
          reinterpret_cast<__m128i*>(o + j),
          Pack8<kSigned>(Code8(_mm256_loadu_ps(v + j), Param<kPerColumn>(scale + j, s1),
                               Param<kPerColumn>(zp + j, z1), lo, hi)));
    }
    for (; j < width; ++j) o[j] = Int8Code(v[j], scale[j * step], zp[j * step], r);
  }
}

}  // namespace

void CodeRowsAvx2(const float* src, int64_t ld, int rows, int width, const float* scale,
                  const float* zp, int step, const CodeRange& r, uint8_t* dst, int64_t ldd) {
  if (r.is_signed) {
    if (step != 0) return CodeRowsAvx2T<true, true>(src, ld, rows, width, scale, zp, r, dst, ldd);
    return CodeRowsAvx2T<true, false>(src, ld, rows, width, scale, zp, r, dst, ldd);
  }
  if (step != 0) return CodeRowsAvx2T<false, true>(src, ld, rows, width, scale, zp, r, dst, ldd);
  return CodeRowsAvx2T<false, false>(src, ld, rows, width, scale, zp, r, dst, ldd);
}

}  // namespace quantd::core::quant::int8

#endif  // defined(__x86_64__)
