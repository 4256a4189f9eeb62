// AVX2 nearest-neighbour search for the lattice-grid quantizers: eight grid
// points per step, one per lane, each lane doing the scalar reference's
// operations in its order (no FMA), so the distances — and the points the
// searches pick — are the same to the bit. Compiled for AVX2 through the
// target attribute; called only when the CPU has it (NearestNeighbourFor).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <limits>

#include "quants_iq_search.h"

#pragma GCC diagnostic ignored "-Wpsabi"

namespace quantd::core::gguf::iq::internal {
namespace {

template <int kDims>
__attribute__((target("avx2"), always_inline)) inline int Nearest(const int8_t* coords, int n,
                                                                  const float* x, const float* w,
                                                                  float scale) {
  const __m256 vscale = _mm256_set1_ps(scale);
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int stride = (n + 7) / 8 * 8;
  float d2[kMaxNeighbours + kNeighbourPadding];
  __m256 vmin = inf;
  // Whole groups of 8 (the rows are padded); lanes past n count as +inf,
  // and so do NaN distances (never smaller than anything in the scalar loop).
  for (int j = 0; j < n; j += 8) {
    __m256 d = _mm256_setzero_ps();
    for (int i = 0; i < kDims; ++i) {
      const __m128i c8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(coords + i * stride + j));
      const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c8));
      const __m256 diff = _mm256_sub_ps(_mm256_mul_ps(vscale, q), _mm256_set1_ps(x[i]));
      d = _mm256_add_ps(d, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(w[i]), diff), diff));
    }
    const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - j), lane));
    d = _mm256_blendv_ps(inf, d, _mm256_and_ps(valid, _mm256_cmp_ps(d, d, _CMP_ORD_Q)));
    _mm256_storeu_ps(d2 + j, d);
    vmin = _mm256_min_ps(vmin, d);
  }
  __m128 m4 = _mm_min_ps(_mm256_castps256_ps128(vmin), _mm256_extractf128_ps(vmin, 1));
  m4 = _mm_min_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_min_ss(m4, _mm_shuffle_ps(m4, m4, 1));
  const float m = _mm_cvtss_f32(m4);
  if (!(m < std::numeric_limits<float>::max())) return 0;
  // The first position holding the minimum: where the scalar loop's last
  // strict improvement happens.
  const __m256 vm = _mm256_set1_ps(m);
  for (int j = 0; j < n; j += 8) {
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(d2 + j), vm, _CMP_EQ_OQ));
    if (mask != 0) return j + __builtin_ctz(static_cast<unsigned>(mask));
  }
  return 0;
}

}  // namespace

__attribute__((target("avx2"))) int NearestNeighbour4_avx2(const float*, const uint16_t*,
                                                           const int8_t* coords, int n,
                                                           const float* x, const float* w,
                                                           float scale) {
  return Nearest<4>(coords, n, x, w, scale);
}

__attribute__((target("avx2"))) int NearestNeighbour8_avx2(const float*, const uint16_t*,
                                                           const int8_t* coords, int n,
                                                           const float* x, const float* w,
                                                           float scale) {
  return Nearest<8>(coords, n, x, w, scale);
}

}  // namespace quantd::core::gguf::iq::internal
