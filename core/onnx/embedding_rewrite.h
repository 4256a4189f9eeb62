// Embedding rewrites: Gather(data = constant 2-D float table [vocab, hidden],
// axis 0) reads weight-only quantized codes behind a DequantizeLinear, INT4
// blocked along hidden (opset 21) or INT8 with one scale per row, or becomes
// ORT's com.microsoft.GatherBlockQuantized (4 or 8 bits, blocked along
// hidden). A table also read elsewhere gets its own codes for each use (the
// float tensor stays while anything still reads it), except a tied LM head
// quantized to MatMulNBits: RewriteTiedEmbedding makes the Gather read the
// LM head's codes, so the table is stored once.
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

// Makes Gather `n` of graph `g` a GatherBlockQuantized over table `w` with
// bits=8: uint8 codes [vocab, hidden], scales [vocab, blocks] in w's type,
// blocks of recipe.block_size along hidden, and, when asymmetric, uint8 zero
// points [vocab, blocks] (symmetric: ORT's implicit zero point 128).
absl::Status RewriteEmbeddingGatherBlockQuantized8(RewriteContext* ctx, onnx::GraphProto* g,
                                                   onnx::NodeProto* n, const ConstWeight& w);

// Makes Gather `n` of graph `g`, whose table is the tensor of `head` (the LM
// head's weight, read `transposed` as MatMulNBits reads it), a
// GatherBlockQuantized over the LM head's MatMulNBits initializers
// (MatMulNBitsInitializers with `bits`), reshaped to 2-D: codes [vocab,
// hidden * bits / 8], scales [vocab, blocks], zero points [vocab, blocks] (8
// bits) or [vocab, ceil(blocks / 2)] (4 bits, packed as MatMulNBits packs
// them). REQUIRES: hidden % recipe.block_size == 0 (no padded last block),
// the Gather reads the table rows as the LM head's N axis.
absl::Status RewriteTiedEmbedding(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                                  const ConstWeight& head, bool transposed, int bits);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_EMBEDDING_REWRITE_H_
