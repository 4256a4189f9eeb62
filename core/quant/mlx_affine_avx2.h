// The AVX2 and AVX-512 variants of the MLX affine kernel, private to core/quant (not on
// any target's include path): QuantizeMlxAffine picks it at run time. Tests
// and the benchmark that compare or time the variant directly include it as
// "core/quant/mlx_affine_avx2.h" from the source root.
//
// Byte-identical to QuantizeMlxAffine_ref (see quantd/core/quant/mlx_affine.h
// for the formula, the layout and the preconditions). Kernels never
// allocate, log or do I/O; thread-compatible like the reference.
#ifndef QUANTD_CORE_QUANT_MLX_AFFINE_AVX2_H_
#define QUANTD_CORE_QUANT_MLX_AFFINE_AVX2_H_

#include <cstdint>

#include "quantd/core/quant/mlx_affine.h"

namespace quantd::core::quant {

// REQUIRES: the preconditions of QuantizeMlxAffine, and
// MlxAffineAvx2Available().
void QuantizeMlxAffine_avx2(MlxFloatType type, int bits, int group_size, const void* w,
                            int64_t rows, int64_t cols, int64_t ld, uint8_t* packed, void* scales,
                            void* biases);
// True when the AVX2 variant may run: ActiveCpuLevel() >= kAvx2 and the CPU
// has F16C (false on builds for other architectures).
bool MlxAffineAvx2Available();

// The AVX-512 variant, for 4 and 8 bits (whole nibbles and bytes); the
// same contract and bytes. REQUIRES: MlxAffineAvx512Available(bits).
void QuantizeMlxAffine_avx512(MlxFloatType type, int bits, int group_size, const void* w,
                              int64_t rows, int64_t cols, int64_t ld, uint8_t* packed, void* scales,
                              void* biases);
// True when bits is 4 or 8 and ActiveCpuLevel() >= kAvx512.
bool MlxAffineAvx512Available(int bits);

}  // namespace quantd::core::quant

#endif  // QUANTD_CORE_QUANT_MLX_AFFINE_AVX2_H_
