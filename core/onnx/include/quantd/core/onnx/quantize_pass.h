// Weight quantization of ONNX models (INT4 MatMulNBits / QDQ, INT8
// weight-only QDQ and dynamic), bit-compatible with ONNX Runtime's tools.
#ifndef QUANTD_CORE_ONNX_QUANTIZE_PASS_H_
#define QUANTD_CORE_ONNX_QUANTIZE_PASS_H_

#include "absl/status/status.h"
#include "quantd/core/onnx/onnx_model.h"
#include "quantd/core/recipe.h"
#include "quantd/core/report.h"
#include "quantd/core/run_context.h"

namespace quantd::core {

// Applies recipe.precision (kInt4 or kInt8) to `model`: rewrites the graph
// now and defers tensor data to model->Save(). Per-tensor quality entries are
// added to `report` as tensors are produced, so `report` must outlive Save().
// Weights are quantized during Save() with `ctx`'s threads and cancel token,
// so `ctx` (and what it points to) must outlive Save() too.
absl::Status QuantizeOnnxWeights(OnnxModel* model, const Recipe& recipe, Report* report,
                                 const RunContext& ctx);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_QUANTIZE_PASS_H_
