// The lattice-grid GGUF types IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS
// and IQ3_S: quantizers byte-identical with llama.cpp b4747
// (ggml-quants.c quantize_row_iq*_impl) and dequantizers. Internal to
// core/gguf (registered in the kernel table in quants.cc).
//
// `_weighted`: one row of n_per_row floats (a multiple of 256) with the
// tensor's per-column importance (n_per_row floats, column j weighs x[j]),
// as llama-quantize passes an importance matrix. quant_weights may be null
// for IQ1_M, IQ2_S, IQ3_XXS and IQ3_S (llama.cpp's own weights without an
// importance matrix); IQ1_S, IQ2_XXS and IQ2_XS REQUIRE it.
// `_ref`: n floats without an importance matrix: llama.cpp's unweighted path
// where it has one; IQ1_S, IQ2_XXS and IQ2_XS (which llama.cpp only makes
// with an importance matrix) weigh every column 1.
//
// Kernels never allocate (the search tables are built once, on first use,
// by LatticeTables::Get), log or do I/O. Thread-safe.
#ifndef QUANTD_CORE_GGUF_QUANTS_IQ_H_
#define QUANTD_CORE_GGUF_QUANTS_IQ_H_

#include <cstdint>

#include "quantd/core/gguf/ggml_types.h"

namespace quantd::core::gguf {

void QuantizeIQ2_XXS_weighted(const float* x, BlockIQ2_XXS* y, int64_t n_per_row,
                              const float* quant_weights);
void QuantizeIQ2_XS_weighted(const float* x, BlockIQ2_XS* y, int64_t n_per_row,
                             const float* quant_weights);
void QuantizeIQ2_S_weighted(const float* x, BlockIQ2_S* y, int64_t n_per_row,
                            const float* quant_weights);
void QuantizeIQ3_XXS_weighted(const float* x, BlockIQ3_XXS* y, int64_t n_per_row,
                              const float* quant_weights);
void QuantizeIQ3_S_weighted(const float* x, BlockIQ3_S* y, int64_t n_per_row,
                            const float* quant_weights);
void QuantizeIQ1_S_weighted(const float* x, BlockIQ1_S* y, int64_t n_per_row,
                            const float* quant_weights);
void QuantizeIQ1_M_weighted(const float* x, BlockIQ1_M* y, int64_t n_per_row,
                            const float* quant_weights);

void QuantizeIQ2_XXS_ref(const float* x, BlockIQ2_XXS* y, int64_t n);
void QuantizeIQ2_XS_ref(const float* x, BlockIQ2_XS* y, int64_t n);
void QuantizeIQ2_S_ref(const float* x, BlockIQ2_S* y, int64_t n);
void QuantizeIQ3_XXS_ref(const float* x, BlockIQ3_XXS* y, int64_t n);
void QuantizeIQ3_S_ref(const float* x, BlockIQ3_S* y, int64_t n);
void QuantizeIQ1_S_ref(const float* x, BlockIQ1_S* y, int64_t n);
void QuantizeIQ1_M_ref(const float* x, BlockIQ1_M* y, int64_t n);

void DequantizeIQ2_XXS(const BlockIQ2_XXS* x, float* y, int64_t n);
void DequantizeIQ2_XS(const BlockIQ2_XS* x, float* y, int64_t n);
void DequantizeIQ2_S(const BlockIQ2_S* x, float* y, int64_t n);
void DequantizeIQ3_XXS(const BlockIQ3_XXS* x, float* y, int64_t n);
void DequantizeIQ3_S(const BlockIQ3_S* x, float* y, int64_t n);
void DequantizeIQ1_S(const BlockIQ1_S* x, float* y, int64_t n);
void DequantizeIQ1_M(const BlockIQ1_M* x, float* y, int64_t n);

namespace iq {
// Dequantization values of grid point `index` (8 or 4 coordinates).
const uint8_t* Iq2xxsValues(int index);
const uint8_t* Iq2xsValues(int index);
const uint8_t* Iq2sValues(int index);
const int8_t* Iq1sValues(int index);  // -1, 0, 1
const uint8_t* Iq3xxsValues(int index);
const uint8_t* Iq3sValues(int index);
// The sign byte of a 7-bit sign code: bit 7 makes the count of set bits even.
inline uint8_t SignByte(uint32_t code7) {
  const uint32_t c = code7 & 127;
  return static_cast<uint8_t>(c | ((__builtin_popcount(c) & 1) << 7));
}
}  // namespace iq

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_QUANTS_IQ_H_
