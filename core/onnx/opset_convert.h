// Opset conversion through libonnx's version converter
// (onnx::version_conversion::ConvertVersion), for models whose ops change
// meaning between their default-domain opset and the one a pass needs
// (Slice attributes that became inputs at 10, Clip min/max at 11, Upsample
// replaced by Resize, ...). opset.h decides when it is needed.
//
// Memory stays bounded by the graph, not the weights: the converter runs on a
// data-free skeleton of the model (large tensors keep name, type and dims),
// and the converted graph takes the original tensors back by name, moved, not
// copied. Tensors the converter creates (Slice starts/ends, Clip min/max,
// Resize roi) are small Constant nodes and stay as it made them.
//
// The converter throws; nothing escapes this file but absl::Status.
//
// Internal to core/onnx; not installed. Free functions over the model proto;
// not thread-safe on the same model.
#ifndef QUANTD_CORE_ONNX_OPSET_CONVERT_H_
#define QUANTD_CORE_ONNX_OPSET_CONVERT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "onnx/onnx_pb.h"

namespace quantd::core {

// The newest default-domain opset libonnx's version converter knows (17 for
// libonnx 1.12).
int64_t MaxConvertibleOpset();

// A short name for the converter in messages and reports, e.g.
// "the ONNX version converter (libonnx 1.12.0)".
std::string ConverterName();

// OK when the converter has an adapter for every default-domain op of
// `model` (subgraphs included) whose schema changes between opset `from` and
// `to`; otherwise FailedPrecondition naming each op with the versions it
// cannot cross. Does not modify `model`. REQUIRES: from < to.
absl::Status CheckConvertible(const onnx::ModelProto& model, int64_t from, int64_t to);

// Converts the default-domain opset of `model` from its current version to
// `to` (no-op when it already is at least `to`). Ops of other domains are
// kept as they are. Besides ONNX's adapters, Resize nodes that the converter
// makes from Upsample-9 and Resize-10 keep their old sampling
// (coordinate_transformation_mode "asymmetric", nearest_mode "floor"), which
// the adapter forgets.
// Errors: FailedPrecondition when `to` is beyond MaxConvertibleOpset(), when
// some op has no adapter (CheckConvertible), when the model has sparse
// initializers or initializer names repeated across subgraphs, or when the
// converter fails, naming the op where it can: `model` is unchanged then.
// FailedPrecondition also when the converted model fails the ONNX checker
// (CheckOnnxOutput): `model` is the converted one then. Internal when the
// converted graph cannot take the original tensors back: `model` has lost
// tensors then and must be discarded.
absl::Status ConvertOpset(onnx::ModelProto* model, int64_t to);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_OPSET_CONVERT_H_
