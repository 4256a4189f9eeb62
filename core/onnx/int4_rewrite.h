// INT4 rewrites of a MatMul/Gemm with a constant weight: the com.microsoft
// MatMulNBits operator (ONNX Runtime's layout), or a blocked
// DequantizeLinear-21 in front of the unchanged consumer (QDQ).
//
// Internal to core/onnx; not installed. Not thread-safe (they edit through
// the pass's RewriteContext).
#ifndef QUANTD_CORE_ONNX_INT4_REWRITE_H_
#define QUANTD_CORE_ONNX_INT4_REWRITE_H_

#include "absl/status/status.h"
#include "onnx/onnx_pb.h"
#include "quantd/core/quant/int4_blockwise.h"
#include "quantd/core/recipe.h"
#include "weight_matcher.h"
#include "weight_rewrite.h"

namespace quantd::core {

// The recipe's INT4 knobs for one output layout.
quant::Int4Options Int4OptionsFor(const Recipe& recipe, quant::Int4Layout layout);

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
