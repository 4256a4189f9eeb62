// INT8 rewrites of a MatMul/Gemm/Conv with a constant weight: weight-only
// (a DequantizeLinear in front of the unchanged consumer, QDQ) and dynamic
// (DynamicQuantizeLinear on the activation, MatMulInteger/ConvInteger, and
// the float rescale), laid out as ONNX Runtime's quantization tools do.
//
// Internal to core/onnx; not installed. Not thread-safe (they edit through
// the pass's RewriteContext).
#ifndef QUANTD_CORE_ONNX_INT8_REWRITE_H_
#define QUANTD_CORE_ONNX_INT8_REWRITE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "deferred_weight.h"
#include "onnx/onnx_pb.h"
#include "weight_matcher.h"
#include "weight_rewrite.h"

namespace quantd::core {

// Makes node `n` of graph `g` read weight `w` through an INT8/UINT8
// DequantizeLinear (per channel when the recipe and opset allow).
// `transposed`: the consumer reads w's 2-D tensor transposed (not for Conv).
absl::Status RewriteInt8Qdq(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                            const ConstWeight& w, bool transposed);

// Replaces node `n` of graph `g` by the dynamic INT8 form over weight `w`.
absl::Status RewriteInt8Dynamic(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                                const ConstWeight& w, bool transposed);

// Adds the INT8 codes (`qtype`, `q_dims`), scales and zero points of `weight`
// (per channel along `axis` when weight->spec is per channel, else per tensor)
// and a DequantizeLinear in front of `n`, plus a Cast back to FLOAT16 when the
// scales cannot be FP16. Returns the value the consumer reads.
std::string AddInt8Dequantize(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                              const ConstWeight& w, const std::shared_ptr<DeferredWeight>& weight,
                              int32_t qtype, const std::vector<int64_t>& q_dims, int64_t channels,
                              int64_t axis);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_INT8_REWRITE_H_
