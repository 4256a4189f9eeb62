// Eight elements as eight floats in an AVX2 register, from float32, bfloat16
// or IEEE half storage at any byte address, and eight floats narrowed to
// halves by FloatToHalfSpan's rule (private to quantd_base: the span
// converters, transposes and range scans take their steps from here).
#ifndef QUANTD_CORE_BASE_SIMD_CONVERT_H_
#define QUANTD_CORE_BASE_SIMD_CONVERT_H_

#if defined(__x86_64__) || defined(__i386__)  // as half.cc's QUANTD_X86
#include <immintrin.h>

#include <cmath>

#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/half.h"

namespace quantd::core::simd {

// The F16C kernels run at the AVX2 level when the CPU also has F16C.
inline bool F16cActive() { return ActiveCpuLevel() >= CpuLevel::kAvx2 && HostCpuFeatures().f16c; }

struct LoadFloat {
  static constexpr int kSize = 4;
  __attribute__((target("avx2"))) __m256 operator()(const unsigned char* p) const {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  }
};

struct LoadBfloat16 {  // the 16 bits are the high half of the float
  static constexpr int kSize = 2;
  __attribute__((target("avx2"))) __m256 operator()(const unsigned char* p) const {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
};

struct LoadHalf {  // F16C (every AVX2 CPU Quantd has met has it; callers check)
  static constexpr int kSize = 2;
  __attribute__((target("avx2,f16c"))) __m256 operator()(const unsigned char* p) const {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};

// FloatToHalfSpan for eight floats: finite values beyond +-65504 become
// +-65504 (sign kept), inf and NaN stay, the rest round to nearest even;
// counts the lanes clamped and the non-zero lanes that round to zero
// (|x| <= 2^-25) until AddTo folds them into a NarrowingStats. The lane
// counts are 32-bit: fold at least every 2^34 values.
struct HalfNarrower {
  __m256i clamped = {0, 0, 0, 0};
  __m256i flushed = {0, 0, 0, 0};

  __attribute__((target("avx2,f16c"))) __m128i operator()(__m256 v) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 max_half = _mm256_set1_ps(kHalfMax);
    const __m256 a = _mm256_and_ps(v, abs_mask);
    const __m256 big = _mm256_and_ps(_mm256_cmp_ps(a, max_half, _CMP_GT_OQ),
                                     _mm256_cmp_ps(a, _mm256_set1_ps(INFINITY), _CMP_LT_OQ));
    const __m256 tiny = _mm256_and_ps(_mm256_cmp_ps(a, _mm256_set1_ps(kHalfFlushLimit), _CMP_LE_OQ),
                                      _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_NEQ_OQ));
    // Clamp: keep the sign bit of v, set the magnitude to 65504.
    v = _mm256_blendv_ps(v, _mm256_or_ps(max_half, _mm256_andnot_ps(abs_mask, v)), big);
    clamped = _mm256_sub_epi32(clamped, _mm256_castps_si256(big));
    flushed = _mm256_sub_epi32(flushed, _mm256_castps_si256(tiny));
    return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }

  __attribute__((target("avx2"))) void AddTo(NarrowingStats* stats) const {
    alignas(32) uint32_t c[8], f[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(c), clamped);
    _mm256_store_si256(reinterpret_cast<__m256i*>(f), flushed);
    for (int k = 0; k < 8; ++k) {
      stats->clamped += c[k];
      stats->flushed += f[k];
    }
  }
};

}  // namespace quantd::core::simd

#endif  // __x86_64__
#endif  // QUANTD_CORE_BASE_SIMD_CONVERT_H_
