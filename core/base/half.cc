#include "quantd/core/base/half.h"

#include <cmath>

#include "quantd/core/base/cpu_features.h"

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
  const __m256 zero_limit = _mm256_set1_ps(kHalfMinSubnormal * 0.5f);
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

}  // namespace

void FloatToHalfSpan(const float* in, uint16_t* out, size_t n, NarrowingStats* stats) {
  if (UseF16c()) return FloatToHalfSpan_f16c(in, out, n, stats);
  FloatToHalfSpan_ref(in, out, n, stats);
}

void HalfToFloatSpan(const uint16_t* in, float* out, size_t n) {
  if (UseF16c()) return HalfToFloatSpan_f16c(in, out, n);
  HalfToFloatSpan_ref(in, out, n);
}
#else
void FloatToHalfSpan(const float* in, uint16_t* out, size_t n, NarrowingStats* stats) {
  FloatToHalfSpan_ref(in, out, n, stats);
}
void HalfToFloatSpan(const uint16_t* in, float* out, size_t n) { HalfToFloatSpan_ref(in, out, n); }
#endif

}  // namespace quantd::core
