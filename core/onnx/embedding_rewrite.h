// Embedding rewrites: Gather(data = constant 2-D float table [vocab, hidden],
// axis 0) reads weight-only quantized codes behind a DequantizeLinear, INT4
// blocked along hidden (opset 21) or INT8 with one scale per row. A table
// also read elsewhere (a tied LM head) gets its own codes for each use; the
// float tensor stays while anything still reads it.
//
// Internal to core/onnx; not installed. Not thread-safe (they edit through
// the pass's RewriteContext).
#ifndef QUANTD_CORE_ONNX_EMBEDDING_REWRITE_H_
#define QUANTD_CORE_ONNX_EMBEDDING_REWRITE_H_

#include "absl/status/status.h"
#include "onnx/onnx_pb.h"
#include "weight_matcher.h"
#include "weight_rewrite.h"

namespace quantd::core {

// Makes Gather `n` of graph `g` read table `w` through an INT4 blocked
// DequantizeLinear (axis 1). REQUIRES: ctx->opsets.embedding_int4.
absl::Status RewriteEmbeddingInt4(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                                  const ConstWeight& w);

// Makes Gather `n` of graph `g` read table `w` through a symmetric INT8
// DequantizeLinear, per row when the opset allows, else per tensor.
absl::Status RewriteEmbeddingInt8(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                                  const ConstWeight& w);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_EMBEDDING_REWRITE_H_
