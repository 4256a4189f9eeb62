// ggml block quantizers and dequantizers, bit-exact with llama.cpp's
// reference quantizers (ggml-quants.c, "_ref" functions, no importance
// matrix) as used by llama-quantize.
//
// Every type has one scalar reference (`Quantize..._ref`). `QuantizeRow`
// picks the fastest kernel for the running CPU; all kernels produce the
// same bytes as the reference (tested in tests/core/gguf/quants_test.cc).
// Bit-exactness requires strict IEEE fp32 evaluation (-ffp-contract=off, no
// -ffast-math), which the build sets globally.
//
// Kernels never allocate, log or do I/O; they read `n` floats and write
// n / block_size blocks into caller-owned memory. `n` must be a multiple of
// the type's block size. Thread-safe (pure functions).
#ifndef QUANTD_CORE_GGUF_QUANTS_H_
#define QUANTD_CORE_GGUF_QUANTS_H_

#include <cstdint>

#include "quantd/core/gguf/ggml_types.h"

namespace quantd::core::gguf {

// Types Quantd writes: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K,
// Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL.
bool CanQuantize(GgmlType type);
// Types Quantd reads as float (the above).
bool CanDequantize(GgmlType type);

// REQUIRES: CanQuantize(type), n % block_size == 0, dst holds RowBytes(type, n).
void QuantizeRow_ref(GgmlType type, const float* src, void* dst, int64_t n);
void QuantizeRow(GgmlType type, const float* src, void* dst, int64_t n);
// REQUIRES: CanDequantize(type), n % block_size == 0.
void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n);

// True when QuantizeRow uses AVX2 kernels on this CPU.
bool QuantsUseAvx2();

// Per-type scalar references (what QuantizeRow_ref dispatches to).
void QuantizeQ4_0_ref(const float* x, BlockQ4_0* y, int64_t n);
void QuantizeQ4_1_ref(const float* x, BlockQ4_1* y, int64_t n);
void QuantizeQ5_0_ref(const float* x, BlockQ5_0* y, int64_t n);
void QuantizeQ5_1_ref(const float* x, BlockQ5_1* y, int64_t n);
void QuantizeQ8_0_ref(const float* x, BlockQ8_0* y, int64_t n);
void QuantizeIQ4_NL_ref(const float* x, BlockIQ4_NL* y, int64_t n);
void QuantizeQ2_K_ref(const float* x, BlockQ2_K* y, int64_t n);
void QuantizeQ3_K_ref(const float* x, BlockQ3_K* y, int64_t n);
void QuantizeQ4_K_ref(const float* x, BlockQ4_K* y, int64_t n);
void QuantizeQ5_K_ref(const float* x, BlockQ5_K* y, int64_t n);
void QuantizeQ6_K_ref(const float* x, BlockQ6_K* y, int64_t n);

namespace internal {
// AVX2 variants (quants_avx2.cc); same bytes as the _ref functions.
// REQUIRES: the CPU supports AVX2.
void QuantizeQ8_0_avx2(const float* x, BlockQ8_0* y, int64_t n);
void QuantizeQ4_0_avx2(const float* x, BlockQ4_0* y, int64_t n);
void QuantizeIQ4_NL_avx2(const float* x, BlockIQ4_NL* y, int64_t n);
void QuantizeQ4_K_avx2(const float* x, BlockQ4_K* y, int64_t n);
void QuantizeQ5_K_avx2(const float* x, BlockQ5_K* y, int64_t n);
void QuantizeQ6_K_avx2(const float* x, BlockQ6_K* y, int64_t n);
void QuantizeQ3_K_avx2(const float* x, BlockQ3_K* y, int64_t n);
void QuantizeQ2_K_avx2(const float* x, BlockQ2_K* y, int64_t n);
}  // namespace internal

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_QUANTS_H_
