// Transposing copies of float matrices: dst[c * dst_ld + r] = src[r * src_ld
// + c] for r < rows, c < cols. The AVX2 variant moves 8 x 8 blocks through
// registers; every variant writes the same bits (plain copies). Kernels:
// no allocation, no I/O; thread-safe on disjoint destinations.
#ifndef QUANTD_CORE_BASE_TRANSPOSE_H_
#define QUANTD_CORE_BASE_TRANSPOSE_H_

#include <cstdint>

namespace quantd::core {

// REQUIRES: src and dst do not overlap.
void TransposeFloats(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                     int64_t dst_ld);
void TransposeFloats_ref(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                         int64_t dst_ld);

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_TRANSPOSE_H_
