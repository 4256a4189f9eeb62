#include "quantd/core/base/transpose.h"

#include "quantd/core/base/cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace quantd::core {

void TransposeFloats_ref(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                         int64_t dst_ld) {
  // Blocks of 16 x 16 keep the lines of both sides in L1.
  constexpr int64_t kBlock = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    for (int64_t c0 = 0; c0 < cols; c0 += kBlock) {
      const int64_t r1 = r0 + kBlock < rows ? r0 + kBlock : rows;
      const int64_t c1 = c0 + kBlock < cols ? c0 + kBlock : cols;
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) dst[c * dst_ld + r] = src[r * src_ld + c];
      }
    }
  }
}

#if defined(__x86_64__)
namespace {

// Eight rows of eight floats in, eight columns out (unpack, shuffle, 128-bit
// permute); the ragged edges go through the reference.
__attribute__((target("avx2"))) void TransposeFloatsAvx2(const float* src, int64_t rows,
                                                         int64_t cols, int64_t src_ld, float* dst,
                                                         int64_t dst_ld) {
  const int64_t rows8 = rows & ~int64_t{7}, cols8 = cols & ~int64_t{7};
  // Columns outer: the eight destination rows of a column block fill
  // contiguously while the source block is read from cache.
  for (int64_t c = 0; c < cols8; c += 8) {
    for (int64_t r = 0; r < rows8; r += 8) {
      __m256 a[8], t[8], u[8];
      for (int q = 0; q < 8; ++q) a[q] = _mm256_loadu_ps(src + (r + q) * src_ld + c);
      for (int q = 0; q < 8; q += 2) {
        t[q] = _mm256_unpacklo_ps(a[q], a[q + 1]);
        t[q + 1] = _mm256_unpackhi_ps(a[q], a[q + 1]);
      }
      for (int q = 0; q < 8; q += 4) {
        u[q] = _mm256_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[q + 1] = _mm256_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      float* o = dst + c * dst_ld + r;
      for (int q = 0; q < 4; ++q) {
        _mm256_storeu_ps(o + q * dst_ld, _mm256_permute2f128_ps(u[q], u[q + 4], 0x20));
        _mm256_storeu_ps(o + (q + 4) * dst_ld, _mm256_permute2f128_ps(u[q], u[q + 4], 0x31));
      }
    }
  }
  if (cols8 < cols) {  // the last columns of the full row blocks
    TransposeFloats_ref(src + cols8, rows8, cols - cols8, src_ld, dst + cols8 * dst_ld, dst_ld);
  }
  if (rows8 < rows) {  // the last rows, every column
    TransposeFloats_ref(src + rows8 * src_ld, rows - rows8, cols, src_ld, dst + rows8, dst_ld);
  }
}

}  // namespace
#endif

void TransposeFloats(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                     int64_t dst_ld) {
#if defined(__x86_64__)
  if (ActiveCpuLevel() >= CpuLevel::kAvx2) {
    return TransposeFloatsAvx2(src, rows, cols, src_ld, dst, dst_ld);
  }
#endif
  TransposeFloats_ref(src, rows, cols, src_ld, dst, dst_ld);
}

}  // namespace quantd::core
