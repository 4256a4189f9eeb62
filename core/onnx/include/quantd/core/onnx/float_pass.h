// Float precision passes over an ONNX model: FP32 -> FP16 and FP16/BF16 ->
// FP32.
//
// Every tensor of a source type (initializers, Constant and other tensor
// attributes, subgraphs) becomes the target type, as do graph inputs,
// outputs and value_info, except:
//  - nodes whose op type is in the op block list, or whose name is in the
//    node block list, keep their original types; Casts are inserted at their
//    boundaries, at most one per (value, type), never chained;
//  - with keep_io_types, graph inputs and outputs keep their types and Casts
//    are inserted at the edges.
//  - FP32 -> FP16 without force_fp16: the nodes FP16 would break (constants
//    beyond its range, constants that flush to zero where that matters,
//    activations statically known to leave its range; core/onnx/fp16_safety.h)
//    keep their types too, each listed in the report's kept_fp32.
// Cast nodes whose `to` is a source type are retargeted; Casts that become
// identities are removed. Tensor data is converted lazily, one tensor at a
// time, when the model is saved.
#ifndef QUANTD_CORE_ONNX_FLOAT_PASS_H_
#define QUANTD_CORE_ONNX_FLOAT_PASS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "quantd/core/onnx/onnx_model.h"
#include "quantd/core/recipe.h"
#include "quantd/core/report.h"
#include "quantd/core/run_context.h"

namespace quantd::core {

// Op types kept in FP32 by default: ops that need FP32 inputs, have no FP16
// kernels in common runtimes, or lose too much precision in FP16.
const std::vector<std::string>& DefaultFp16OpBlockList();

// Applies recipe.precision (kFp16 or kFp32) to `model`. Fills the report's
// counts; clamp/flush counts are added while the model is saved, so `report`
// must outlive model->Save(). Tensor data is converted during Save() with
// `ctx`'s threads, so `ctx` must outlive Save() too.
absl::Status ConvertFloatPrecision(OnnxModel* model, const Recipe& recipe, Report* report,
                                   const RunContext& ctx);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_FLOAT_PASS_H_
