// Opset policy of the weight quantization pass: which default-domain opset
// the rewritten graph needs, whether the model can be raised to it by its
// version number alone or needs ONNX's version converter (opset_convert.h),
// and the opset_import edits that follow.
//
// Internal to core/onnx; not installed. Free functions over the model proto;
// not thread-safe on the same model.
#ifndef QUANTD_CORE_ONNX_OPSET_H_
#define QUANTD_CORE_ONNX_OPSET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"
#include "quantd/core/recipe.h"

namespace quantd::core {

// Whether `domain` names the default ONNX domain ("" or "ai.onnx").
bool IsDefaultDomain(const std::string& domain);

// The default-domain opset `model` imports; 1 when it imports none.
int64_t DefaultOpset(const onnx::ModelProto& model);

// OK when every default-domain op of `model` (subgraphs included) means the
// same at opset `to` as at `from`; otherwise FailedPrecondition listing the
// ops and versions that block the raise.
absl::Status CheckOpsetRaise(const onnx::ModelProto& model, int64_t from, int64_t to);

// Sets the default-domain opset to `version` (adding the import when missing)
// and raises the IR version to the lowest one that allows it.
void SetDefaultOpset(onnx::ModelProto* model, int64_t version);

// Imports com.microsoft version 1 unless the model already imports it.
void EnsureMsDomain(onnx::ModelProto* model);

// What the rewrites may emit once PlanOpsets has settled the opset.
struct OpsetPlan {
  int64_t opset = 1;              // the default-domain opset after planning
  bool int8_per_channel = false;  // per-axis DequantizeLinear (opset >= 13)
  bool embedding_int4 = false;    // INT4 embeddings: blocked DequantizeLinear-21
};

// Raises the default opset of `model` as far as `recipe` needs and the
// model allows: 21 for INT4 QDQ (and INT4 embeddings, which otherwise fall
// back to INT8 per row), 11 for dynamic INT8, 10 for DequantizeLinear, 13 for
// per-axis scales (which otherwise fall back to per-tensor).
// `has_embedding`: some Gather reads a quantizable embedding table and
// KeepEmbeddings(recipe) is false. A needed raise (not the optional ones for
// per-axis scales and INT4 embeddings) across ops that change meaning goes
// through ONNX's version converter (opset_convert.h), to 13 at once when
// per-axis scales want it. Appends what it did or gave up to `notes`.
// Errors: FailedPrecondition when a needed raise is impossible (ops without
// a converter adapter, or changing meaning beyond the converter's last
// opset), naming the ops.
absl::StatusOr<OpsetPlan> PlanOpsets(const Recipe& recipe, bool has_embedding,
                                     onnx::ModelProto* model, std::vector<std::string>* notes);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_OPSET_H_
