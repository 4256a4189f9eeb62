// ggml block quantizers and dequantizers, bit-exact with llama.cpp's
// quantizers (ggml-quants.c) as used by llama-quantize: the reference ("_ref")
// functions without an importance matrix, and the weighted row quantizers
// (quantize_row_<type>_impl) with one.
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
// One row of `n_per_row` floats (a multiple of the block size) quantized
// with per-column importance weights: `quant_weights` holds n_per_row
// non-negative floats (column j's weight applies to src[j]), as llama.cpp's
// quantize_row_<type>_impl(x, y, n_per_row, quant_weights) takes them. Some
// types' statistics span the whole row (Q4_0 ... Q5_1 use the row's mean
// square), so a row is the unit. `quant_weights` may be null only for
// types whose weighted quantizer has an unweighted path of its own (IQ4_NL,
// IQ4_XS and the lattice types that accept it); callers pass null only
// through QuantizeRows, which then uses the plain row kernels.
using QuantizeRowWeightedFn = void (*)(const float* src, void* dst, int64_t n_per_row,
                                       const float* quant_weights);

struct QualitySums;  // below
// One pass of QuantizeRowChecked (below) for one type: scan, quantize and
// (q non-null) measure; the same bytes, sums and result as its steps.
using QuantizeRowCheckedFn = int64_t (*)(const float* src, void* dst, int64_t n, QualitySums* q);

// The kernels of one type, bound to its block struct (ggml_types.h) so the
// geometry (TypeInfo) and the functions cannot disagree.
struct GgmlKernels {
  GgmlType type;
  QuantizeRowFn quantize_ref;   // the scalar reference
  QuantizeRowFn quantize_avx2;  // AVX2 variant, same bytes; null when none
  DequantizeRowFn dequantize;
  // The weighted quantizer (an importance matrix is given); null when the
  // type ignores importance weights (Q8_0, TQ1_0, TQ2_0, floats).
  QuantizeRowWeightedFn quantize_weighted = nullptr;
  // AVX2 variant of quantize_weighted, same bytes; null when none.
  QuantizeRowWeightedFn quantize_weighted_avx2 = nullptr;
  // AVX-512 variant of quantize_ref, same bytes; null when none.
  QuantizeRowFn quantize_avx512 = nullptr;
  // One-pass QuantizeRowChecked kernels at AVX2 / AVX-512; null when none
  // (then QuantizeRowChecked runs its steps one after another).
  QuantizeRowCheckedFn checked_avx2 = nullptr;
  QuantizeRowCheckedFn checked_avx512 = nullptr;
};

// One entry per type Quantd writes and reads as float: F32, F16, BF16, Q8_0,
// Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS,
// TQ1_0, TQ2_0 (and the lattice types registered in quants_iq*.cc).
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
// `nrows` rows of `n_per_row` floats, as llama.cpp's ggml_quantize_chunk:
// with `quant_weights` (n_per_row floats, the tensor's importance) and a
// type that uses them, row by row through kernels.quantize_weighted;
// otherwise one QuantizeRow over all nrows * n_per_row values.
// REQUIRES: CanQuantize(type), n_per_row % block_size == 0, dst holds
// nrows * RowBytes(type, n_per_row).
void QuantizeRows(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                  const float* quant_weights);
// The same with the scalar references only (tests compare the two).
void QuantizeRows_ref(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                      const float* quant_weights);
// Whether `type` has a weighted quantizer (importance weights change its bytes).
bool UsesImportance(GgmlType type);
// REQUIRES: CanDequantize(type), n % block_size == 0.
void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n);

// Quality of a quantization over some values x and their stored values y
// (the dequantized output): sum x^2, sum (x - y)^2 and max |x - y|.
struct QualitySums {
  double sum_w2 = 0;
  double sum_e2 = 0;
  double max_abs = 0;
};

// The span over which AddQualitySums keeps float partial sums.
inline constexpr int64_t kQualitySpan = 4096;

// Adds the quality sums over n values to *q. Within each span of
// kQualitySpan values (from x), 16 float lanes (lane k takes the values
// i % 16 == k, in order; w * w and e * e rounded before each add) feed the
// double totals in lane order, so the result is deterministic and accurate,
// and calling it span by span gives the same sums as one call.
void AddQualitySums(const float* x, const float* y, int64_t n, QualitySums* q);

// Quantizes n values as QuantizeRow, for a job that must refuse NaN/Inf
// (a quantized type; float types quantize without the check) and, with q
// non-null, measure: adds what AddQualitySums(x, DequantizeRow(y), n, q)
// adds. The types with a checked_* kernel at the active CpuLevel (Q8_0,
// Q4_0, Q4_1, Q5_0, Q5_1 and Q6_K from kAvx2 up) do it in one pass (each
// block is checked, quantized and measured while in cache); the others scan,
// quantize, then dequantize span by span into `scratch` (kQualitySpan
// floats, caller-owned; unused by the one-pass kernels). No block with a
// non-finite value reaches a float-to-integer conversion.
// Returns -1, or the index of the first non-finite value of x; then y and
// *q hold partial results, to be discarded.
// REQUIRES: CanQuantize(type), n % block_size == 0, y holds RowBytes(type, n).
int64_t QuantizeRowChecked(GgmlType type, const float* x, void* y, int64_t n, QualitySums* q,
                           float* scratch);

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
void QuantizeIQ4_XS_ref(const float* x, BlockIQ4_XS* y, int64_t n);
void QuantizeTQ1_0_ref(const float* x, BlockTQ1_0* y, int64_t n);
void QuantizeTQ2_0_ref(const float* x, BlockTQ2_0* y, int64_t n);

// Weighted row quantizers (QuantizeRowWeightedFn; quant_weights non-null
// except for IQ4_NL and IQ4_XS, where null means the unweighted search).
void QuantizeQ4_0_weighted(const float* x, BlockQ4_0* y, int64_t n_per_row, const float* qw);
void QuantizeQ4_1_weighted(const float* x, BlockQ4_1* y, int64_t n_per_row, const float* qw);
void QuantizeQ5_0_weighted(const float* x, BlockQ5_0* y, int64_t n_per_row, const float* qw);
void QuantizeQ5_1_weighted(const float* x, BlockQ5_1* y, int64_t n_per_row, const float* qw);
void QuantizeQ2_K_weighted(const float* x, BlockQ2_K* y, int64_t n_per_row, const float* qw);
void QuantizeQ3_K_weighted(const float* x, BlockQ3_K* y, int64_t n_per_row, const float* qw);
void QuantizeQ4_K_weighted(const float* x, BlockQ4_K* y, int64_t n_per_row, const float* qw);
void QuantizeQ5_K_weighted(const float* x, BlockQ5_K* y, int64_t n_per_row, const float* qw);
void QuantizeQ6_K_weighted(const float* x, BlockQ6_K* y, int64_t n_per_row, const float* qw);
void QuantizeIQ4_NL_weighted(const float* x, BlockIQ4_NL* y, int64_t n_per_row, const float* qw);
void QuantizeIQ4_XS_weighted(const float* x, BlockIQ4_XS* y, int64_t n_per_row, const float* qw);

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_QUANTS_H_
