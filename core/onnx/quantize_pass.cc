#include "quantd/core/onnx/quantize_pass.h"

namespace quantd::core {

// Placeholder until the INT4/INT8 issue lands: refuses clearly.
absl::Status QuantizeOnnxWeights(OnnxModel*, const Recipe& recipe, Report*, const CancelToken*) {
  return absl::UnimplementedError("ONNX " + PrecisionName(recipe.precision) +
                                  " quantization is not available in this build yet");
}

}  // namespace quantd::core
