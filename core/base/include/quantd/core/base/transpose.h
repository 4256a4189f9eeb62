// Transposing copies of matrices into float: dst[c * dst_ld + r] =
// float(src[r * src_ld + c]) for r < rows, c < cols, from float32, bfloat16
// or IEEE half elements (widening is exact). The AVX2 variants move 8 x 8
// blocks through registers; every variant writes the same bits as its
// _ref (but for half NaNs, which stay NaNs: F16C quiets signalling ones). Kernels: no allocation,
// no I/O; thread-safe on disjoint destinations.
#ifndef QUANTD_CORE_BASE_TRANSPOSE_H_
#define QUANTD_CORE_BASE_TRANSPOSE_H_

#include <cstdint>

#include "quantd/core/base/half.h"

namespace quantd::core {

// REQUIRES: src and dst do not overlap.
void TransposeFloats(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                     int64_t dst_ld);
void TransposeFloats_ref(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                         int64_t dst_ld);

// As TransposeFloats, from bfloat16 / IEEE half bits (src_ld in elements)
// at any byte alignment: a safetensors file written without the header
// padding has its tensors at odd offsets.
void TransposeBfloat16ToFloats(const void* src, int64_t rows, int64_t cols, int64_t src_ld,
                               float* dst, int64_t dst_ld);
void TransposeBfloat16ToFloats_ref(const void* src, int64_t rows, int64_t cols, int64_t src_ld,
                                   float* dst, int64_t dst_ld);
void TransposeHalfToFloats(const void* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                           int64_t dst_ld);
void TransposeHalfToFloats_ref(const void* src, int64_t rows, int64_t cols, int64_t src_ld,
                               float* dst, int64_t dst_ld);

// Transposing and narrowing in one pass: dst (IEEE half bits) gets what
// FloatToHalfSpan makes of the widened values (clamped beyond +-65504,
// rounded to nearest even), and its counts are added to *stats; the same
// bits as the Transpose*ToFloats above followed by FloatToHalfSpan, without
// the float32 matrix between them.
void TransposeFloatsToHalves(const float* src, int64_t rows, int64_t cols, int64_t src_ld,
                             uint16_t* dst, int64_t dst_ld, NarrowingStats* stats);
void TransposeBfloat16ToHalves(const void* src, int64_t rows, int64_t cols, int64_t src_ld,
                               uint16_t* dst, int64_t dst_ld, NarrowingStats* stats);
void TransposeHalfToHalves(const void* src, int64_t rows, int64_t cols, int64_t src_ld,
                           uint16_t* dst, int64_t dst_ld, NarrowingStats* stats);

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_TRANSPOSE_H_
