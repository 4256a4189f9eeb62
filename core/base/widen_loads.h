// Eight elements as eight floats in an AVX2 register, from float32, bfloat16
// or IEEE half storage at any byte address (private to quantd_base: the
// widening transposes and range scans take their loads from here).
#ifndef QUANTD_CORE_BASE_WIDEN_LOADS_H_
#define QUANTD_CORE_BASE_WIDEN_LOADS_H_

#if defined(__x86_64__)
#include <immintrin.h>

namespace quantd::core::wide_load {

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

}  // namespace quantd::core::wide_load

#endif  // __x86_64__
#endif  // QUANTD_CORE_BASE_WIDEN_LOADS_H_
