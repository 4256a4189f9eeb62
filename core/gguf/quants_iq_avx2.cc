// AVX2 neighbour distances for the lattice-grid quantizers: eight grid
// points per step, one per lane, each lane doing the scalar reference's
// operations in its order (no FMA), so the distances — and the points the
// searches pick — are the same to the bit. Compiled for AVX2 through the
// target attribute; called only when the CPU has it (NeighbourDistancesFor).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "quants_iq_search.h"

#pragma GCC diagnostic ignored "-Wpsabi"

namespace quantd::core::gguf::iq::internal {
namespace {

template <int kDims>
__attribute__((target("avx2"), always_inline)) inline void Distances(const int8_t* coords, int n,
                                                                     const float* x, const float* w,
                                                                     float scale, float* d2) {
  const __m256 vscale = _mm256_set1_ps(scale);
  const int stride = (n + 7) / 8 * 8;
  // Whole groups of 8 (the rows are padded); lanes past n are ignored.
  for (int j = 0; j < n; j += 8) {
    __m256 d = _mm256_setzero_ps();
    for (int i = 0; i < kDims; ++i) {
      const __m128i c8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(coords + i * stride + j));
      const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c8));
      const __m256 diff = _mm256_sub_ps(_mm256_mul_ps(vscale, q), _mm256_set1_ps(x[i]));
      d = _mm256_add_ps(d, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(w[i]), diff), diff));
    }
    _mm256_storeu_ps(d2 + j, d);
  }
}

}  // namespace

__attribute__((target("avx2"))) void NeighbourDistances4_avx2(const float*, const uint16_t*,
                                                              const int8_t* coords, int n,
                                                              const float* x, const float* w,
                                                              float scale, float* d2) {
  Distances<4>(coords, n, x, w, scale, d2);
}

__attribute__((target("avx2"))) void NeighbourDistances8_avx2(const float*, const uint16_t*,
                                                              const int8_t* coords, int n,
                                                              const float* x, const float* w,
                                                              float scale, float* d2) {
  Distances<8>(coords, n, x, w, scale, d2);
}

}  // namespace quantd::core::gguf::iq::internal
