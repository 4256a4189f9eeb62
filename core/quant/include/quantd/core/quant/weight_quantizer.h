// Whole-matrix quantization drivers: split a weight into column tiles, run the
// kernels (int4_blockwise.h, int8_linear.h) on the caller's threads
// (RunContext: its pool and parallelism), check its cancel token between
// tiles, and measure quality (quality.h) on the fly. The output bytes do not
// depend on the parallelism.
//
// Memory: besides the returned buffers, each thread slot holds at most two
// float tiles of K x 64 values (row-major INT4 RTN and INT8: a few column
// ranges of at most 4096 floats, and K floats, instead); the source is only
// read. Functions are thread-safe; several may share one
// pool.
#ifndef QUANTD_CORE_QUANT_WEIGHT_QUANTIZER_H_
#define QUANTD_CORE_QUANT_WEIGHT_QUANTIZER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "quantd/core/quant/int4_blockwise.h"
#include "quantd/core/quant/int8_linear.h"
#include "quantd/core/quant/quality.h"
#include "quantd/core/report.h"
#include "quantd/core/run_context.h"

namespace quantd::core::quant {

// A weight matrix W[k, n] inside `bytes` of FLOAT (1) or FLOAT16 (10)
// elements, or for QuantizeInt4Matrix and QuantizeBlockwise8Matrix also
// BFLOAT16 (16: float32 weights read from their exact bfloat16 form; their
// scales are float32): element
// (r, c) is at index r * row_stride + c * col_stride.
struct MatrixSource {
  absl::Span<const uint8_t> bytes;
  int32_t onnx_type = 1;
  int64_t k = 0, n = 0;
  int64_t row_stride = 0, col_stride = 1;
};

struct Int4Result {
  std::vector<uint8_t> packed;
  std::vector<uint8_t> scales;  // little-endian elements of the source type
  std::vector<uint8_t> zero_points;
};

// `quality` (nullable) receives the SQNR and error fields, the output error
// measured at `level` (quality.h). Row-major RTN weights get them from the
// quantization tiles themselves (fused, no second pass).
absl::StatusOr<Int4Result> QuantizeInt4Matrix(const MatrixSource& src, const Int4Options& options,
                                              const RunContext& ctx, TensorReport* quality,
                                              QualityLevel level = QualityLevel::kFull);

struct Int8Options {
  Int8Type type = Int8Type::kInt8;
  bool per_channel = false;  // one scale per column c of W
  bool reduce_range = false;
  // Output element (r, c) goes to index r * out_row_stride + c * out_col_stride.
  int64_t out_row_stride = 0, out_col_stride = 1;
};

struct Int8Result {
  std::vector<uint8_t> data;       // int8 or uint8 codes, k * n bytes
  std::vector<Int8Params> params;  // one, or n when per channel
};

// Blockwise 8-bit codes in com.microsoft.MatMulNBits' bits=8 layout: blocks
// of `block_size` rows of one column, codes [N, blocks, block_size] (a tail
// block padded with 0), scales [N * blocks] in the source type, and, when
// asymmetric, zero points [N * blocks] bytes. The formulas are MatMulNBits'
// 4-bit ones with 8-bit ranges: symmetric scale = m / -128 for the extreme m
// of larger magnitude, implicit zero point 128; asymmetric scale =
// (max - min) / 255 over the range widened to include 0, zero point
// round(-min / scale) clamped to 0..255; code = clamp(round(w / scale + zp),
// 0, 255). NaN/Inf weights are refused (InvalidArgument).
struct Blockwise8Result {
  std::vector<uint8_t> codes;
  std::vector<uint8_t> scales;  // little-endian elements of the source type
  std::vector<uint8_t> zero_points;
};
absl::StatusOr<Blockwise8Result> QuantizeBlockwise8Matrix(const MatrixSource& src, int block_size,
                                                          bool symmetric, const RunContext& ctx,
                                                          TensorReport* quality,
                                                          QualityLevel level = QualityLevel::kFull);

// Two streaming passes over column ranges (min/max, then codes with the
// quality sums fused into the code tiles, as INT4 RTN): row-major weights
// (MatMul B[K, N]) stream row pieces, weights stored [N, K] (Gemm transB,
// Conv, embeddings) whole columns. Same bytes for every layout and thread
// count.
absl::StatusOr<Int8Result> QuantizeInt8Matrix(const MatrixSource& src, const Int8Options& options,
                                              const RunContext& ctx, TensorReport* quality,
                                              QualityLevel level = QualityLevel::kFull);

}  // namespace quantd::core::quant

#endif  // QUANTD_CORE_QUANT_WEIGHT_QUANTIZER_H_
