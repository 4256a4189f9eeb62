// INT4 rewrites of a MatMul/Gemm with a constant weight: the com.microsoft
// MatMulNBits operator (ONNX Runtime's layout), or a blocked
// DequantizeLinear-21 in front of the unchanged consumer (QDQ).
//
// Internal to core/onnx; not installed. Not thread-safe (they edit through
// the pass's RewriteContext).
#ifndef QUANTD_CORE_ONNX_INT4_REWRITE_H_
#define QUANTD_CORE_ONNX_INT4_REWRITE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "onnx/onnx_pb.h"
#include "quantd/core/quant/int4_blockwise.h"
#include "quantd/core/recipe.h"
#include "weight_matcher.h"
#include "weight_rewrite.h"

namespace quantd::core {

// The recipe's INT4 knobs for one output layout.
quant::Int4Options Int4OptionsFor(const Recipe& recipe, quant::Int4Layout layout);

// The MatMulNBits initializers of weight `w` of graph `g` read `transposed`
// or not, `bits` 4 or 8: codes uint8 [N, blocks, block_size * bits / 8],
// scales [N * blocks] (w's type) and, when asymmetric, zero points uint8
// (4-bit: [N * ceil(blocks / 2)] packed, 8-bit: [N * blocks]). Returns their
// names (codes, scales[, zero points]); created on the first call for a
// (graph, weight, transposed, bits), shared by later ones.
std::vector<std::string> MatMulNBitsInitializers(RewriteContext* ctx, onnx::GraphProto* g,
                                                 const ConstWeight& w, bool transposed, int bits);

// Replaces node `n` of graph `g` (MatMul, or Gemm with an optional bias) by
// MatMulNBits over weight `w` (+ Add for the bias). `transposed`: the
// consumer reads w's tensor transposed.
absl::Status RewriteMatMulNBits(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                                const ConstWeight& w, bool transposed, int bits = 4);

// Makes node `n` of graph `g` read weight `w` through an INT4/UINT4 blocked
// DequantizeLinear (axis 0). REQUIRES: ctx->opsets.opset >= 21.
absl::Status RewriteInt4Qdq(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                            const ConstWeight& w, bool transposed);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_INT4_REWRITE_H_
