// ggml block quantizers and dequantizers, bit-exact with llama.cpp's
// reference quantizers (ggml-quants.c, "_ref" functions, no importance
// matrix) as used by llama-quantize.
//
// Every type has one scalar reference (`Quantize..._ref`) and one entry in a
// kernel table (GgmlKernels) binding it to its fast variants and its
// dequantizer. `QuantizeRow` picks the variant of the active CPU level
// (quantd/core/base/cpu_features.h); all variants produce the same bytes as
// the reference (tests/core/gguf/quants_test.cc runs each one).
// Bit-exactness requires strict IEEE fp32 evaluation (-ffp-contract=off, no
// -ffast-math), which the build sets globally.
//
// Kernels never allocate, log or do I/O; they read `n` floats and write
// n / block_size blocks into caller-owned memory. `n` must be a multiple of
// the type's block size. Thread-safe (pure functions).
#ifndef QUANTD_CORE_GGUF_QUANTS_H_
#define QUANTD_CORE_GGUF_QUANTS_H_

#include <cstdint>

#include "absl/types/span.h"
#include "quantd/core/base/cpu_features.h"
#include "quantd/core/gguf/ggml_types.h"

namespace quantd::core::gguf {

// Row kernels: `n` floats <-> n / block_size blocks (or n plain elements).
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n);
using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);

// The kernels of one type, bound to its block struct (ggml_types.h) so the
// geometry (TypeInfo) and the functions cannot disagree.
struct GgmlKernels {
  GgmlType type;
  QuantizeRowFn quantize_ref;   // the scalar reference
  QuantizeRowFn quantize_avx2;  // AVX2 variant, same bytes; null when none
  DequantizeRowFn dequantize;
};

// One entry per type Quantd writes and reads as float: F32, F16, BF16, Q8_0,
// Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL.
absl::Span<const GgmlKernels> AllGgmlKernels();
// The entry of `type`, or null when Quantd has no kernels for it.
const GgmlKernels* FindGgmlKernels(GgmlType type);
// The quantizer QuantizeRow runs at `level`: the best variant at or below it.
QuantizeRowFn QuantizeRowFor(const GgmlKernels& kernels, CpuLevel level);

bool CanQuantize(GgmlType type);    // FindGgmlKernels(type) != null
bool CanDequantize(GgmlType type);  // the same types

// REQUIRES: CanQuantize(type), n % block_size == 0, dst holds RowBytes(type, n).
void QuantizeRow_ref(GgmlType type, const float* src, void* dst, int64_t n);
// The variant of ActiveCpuLevel() (cpu_features.h).
void QuantizeRow(GgmlType type, const float* src, void* dst, int64_t n);
// REQUIRES: CanDequantize(type), n % block_size == 0.
void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n);

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

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_QUANTS_H_
