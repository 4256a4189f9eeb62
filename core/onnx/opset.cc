#include "opset.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "opset_convert.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/onnx/graph_utils.h"

namespace quantd::core {
namespace {

void CollectOps(const onnx::GraphProto& g, std::set<std::string>* ops) {
  for (const auto& n : g.node()) {
    if (IsDefaultDomain(n.domain())) ops->insert(n.op_type());
    for (const auto& a : n.attribute()) {
      if (a.has_g()) CollectOps(a.g(), ops);
      for (const auto& sg : a.graphs()) CollectOps(sg, ops);
    }
  }
}

// Default-domain ops whose meaning changed (attributes became inputs, axis
// semantics, defaults) at the given opset version. Raising a model across
// one of these versions would silently change what it computes.
struct OpsetChange {
  const char* op;
  int version;
};
constexpr OpsetChange kBreakingChanges[] = {
    {"Upsample", 10},
    {"Slice", 10},
    {"TopK", 10},
    {"Clip", 11},
    {"Pad", 11},
    {"Resize", 11},
    {"Scatter", 11},
    {"Dropout", 12},
    {"Softmax", 13},
    {"LogSoftmax", 13},
    {"Hardmax", 13},
    {"Squeeze", 13},
    {"Unsqueeze", 13},
    {"ReduceSum", 13},
    {"Split", 13},
    {"RoiAlign", 16},
    {"Split", 18},
    {"ReduceMean", 18},
    {"ReduceMax", 18},
    {"ReduceMin", 18},
    {"ReduceProd", 18},
    {"ReduceL1", 18},
    {"ReduceL2", 18},
    {"ReduceLogSum", 18},
    {"ReduceLogSumExp", 18},
    {"ReduceSumSquare", 18},
    {"GridSample", 20},
    {"DFT", 20},
    {"GroupNormalization", 21},
};

// Raises the default opset of `model` from `from` to `to`. When no op changes
// meaning in between, only the version number changes (the model's bytes stay
// as they were otherwise). Else the version converter rewrites the ops, to
// `convert_to` (>= `to`) when it can so one conversion serves later raises;
// beyond MaxConvertibleOpset() the version number is raised from there when
// no op changes meaning. Errors: FailedPrecondition naming the ops.
absl::StatusOr<int64_t> RaiseOpset(onnx::ModelProto* model, int64_t from, int64_t to,
                                   int64_t convert_to, std::vector<std::string>* notes) {
  absl::Status cheap = CheckOpsetRaise(*model, from, to);
  if (cheap.ok()) {
    notes->push_back(absl::StrCat("raised the default opset from ", from, " to ", to));
    SetDefaultOpset(model, to);
    return to;
  }
  const int64_t max = MaxConvertibleOpset();
  if (from >= max) return cheap;  // the converter cannot help
  const int64_t target = std::max(to, convert_to) <= max ? std::max(to, convert_to) : to;
  const int64_t convert = std::min(target, max);
  if (convert < target) {
    absl::Status rest = CheckOpsetRaise(*model, convert, target);
    if (!rest.ok()) return cheap;
  }
  // What changes meaning in between, for the report.
  std::string why(CheckOpsetRaise(*model, from, convert).message());
  why = why.substr(why.find(": ") + 2);
  absl::Status st = ConvertOpset(model, convert);
  if (!st.ok()) {
    return absl::Status(st.code(), absl::StrCat(cheap.message(), "; ", st.message()));
  }
  std::string note = absl::StrCat("converted the default opset from ", from, " to ", convert,
                                  " with ", ConverterName(), ", which rewrote ", why);
  if (convert < target) {
    // Ops the converter made (Upsample -> Resize) may block the rest.
    QUANTD_RETURN_IF_ERROR(CheckOpsetRaise(*model, convert, target));
    SetDefaultOpset(model, target);
    absl::StrAppend(&note, "; then raised it to ", target);
  }
  notes->push_back(note);
  return target;
}

}  // namespace

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

int64_t DefaultOpset(const onnx::ModelProto& model) {
  const int64_t v = DefaultOpsetVersion(model);
  return v > 0 ? v : 1;
}

absl::Status CheckOpsetRaise(const onnx::ModelProto& model, int64_t from, int64_t to) {
  std::set<std::string> ops;
  CollectOps(model.graph(), &ops);
  std::vector<std::string> blockers;
  for (const auto& c : kBreakingChanges) {
    if (from < c.version && c.version <= to && ops.count(c.op) > 0) {
      blockers.push_back(absl::StrCat(c.op, " (changed in opset ", c.version, ")"));
    }
  }
  if (blockers.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("the model uses opset ", from, " and cannot be raised to opset ", to,
                   " without changing its meaning: ", absl::StrJoin(blockers, ", ")));
}

void SetDefaultOpset(onnx::ModelProto* model, int64_t version) {
  bool found = false;
  for (auto& o : *model->mutable_opset_import()) {
    if (IsDefaultDomain(o.domain())) {
      o.set_version(version);
      found = true;
    }
  }
  if (!found) {
    auto* o = model->add_opset_import();
    o->set_domain("");
    o->set_version(version);
  }
  const int64_t ir = version >= 21   ? 10
                     : version >= 19 ? 9
                     : version >= 15 ? 8
                     : version >= 13 ? 7
                                     : 6;
  if (model->ir_version() < ir) model->set_ir_version(ir);
}

void EnsureMsDomain(onnx::ModelProto* model) {
  for (const auto& o : model->opset_import()) {
    if (o.domain() == "com.microsoft") return;
  }
  auto* o = model->add_opset_import();
  o->set_domain("com.microsoft");
  o->set_version(1);
}

absl::StatusOr<OpsetPlan> PlanOpsets(const Recipe& recipe, bool has_embedding,
                                     onnx::ModelProto* model, std::vector<std::string>* notes) {
  OpsetPlan plan;
  plan.opset = DefaultOpset(*model);
  const bool int4 = recipe.precision == Precision::kInt4;
  const bool qdq4 = int4 && recipe.int4_format == Int4Format::kQdq;
  const bool dynamic = !int4 && recipe.int8_mode == Int8Mode::kDynamic;
  const bool emb = !KeepEmbeddings(recipe) && has_embedding;
  if (!KeepEmbeddings(recipe) && !emb) {
    notes->push_back(
        "--quantize-embeddings: no Gather reads a constant 2-D float weight on axis 0");
  }
  int64_t need = 1;
  if (qdq4) need = 21;
  // INT4 embeddings need blocked DequantizeLinear (opset 21); when the model
  // cannot be raised that far they fall back to INT8 per row.
  plan.embedding_int4 = emb && int4 && !recipe.int8_embeddings;
  // GatherBlockQuantized is a contrib op: INT4 embeddings need no opset raise.
  const bool gbq = recipe.embedding_op == EmbeddingOp::kGatherBlockQuantized;
  if (plan.embedding_int4 && !gbq && std::max(plan.opset, need) < 21) {
    absl::Status st = CheckOpsetRaise(*model, plan.opset, 21);
    if (st.ok()) {
      need = 21;
    } else {
      plan.embedding_int4 = false;
      notes->push_back(absl::StrCat(
          "--quantize-embeddings: INT4 embeddings need DequantizeLinear-21 (block_size); ",
          st.message(), ". Embeddings use INT8 per-row scales instead"));
    }
  }
  // INT8 MatMulNBits needs no DequantizeLinear.
  const bool nbits8 = recipe.int8_mode == Int8Mode::kMatMulNBits;
  const bool int8_inside_int4 = recipe.lm_head == LmHeadMode::kInt8 ||
                                recipe.int8_first_layers > 0 || recipe.int8_last_layers > 0 ||
                                !recipe.int8_regex.empty();
  // GatherBlockQuantized embeddings (4 or 8 bits) need no DequantizeLinear either.
  const bool dq8 = (!int4 && !dynamic && !nbits8) || (int4 && int8_inside_int4 && !nbits8) ||
                   (emb && !plan.embedding_int4 && !gbq);
  if (dynamic) need = std::max<int64_t>(need, 11);
  if (dq8) need = std::max<int64_t>(need, 10);
  const bool wants_per_axis = dq8 && (recipe.per_channel || int4 || emb);
  if (plan.opset < need) {
    // A conversion goes on to 13 when per-axis scales want it.
    absl::StatusOr<int64_t> raised =
        RaiseOpset(model, plan.opset, need, wants_per_axis ? 13 : need, notes);
    if (!raised.ok()) {
      if (qdq4) {
        return absl::FailedPreconditionError(absl::StrCat(
            "INT4 QDQ needs DequantizeLinear from opset 21 (int4 types, block_size); ",
            raised.status().message(), ". Set int4_format to INT4_FORMAT_MATMULNBITS instead"));
      }
      return raised.status();
    }
    plan.opset = *raised;
  }
  plan.int8_per_channel = plan.opset >= 13;
  if (wants_per_axis && plan.opset < 13) {
    // Per-axis DequantizeLinear is opset 13; raise when that keeps the meaning.
    if (CheckOpsetRaise(*model, plan.opset, 13).ok()) {
      notes->push_back(absl::StrCat("raised the default opset from ", plan.opset,
                                    " to 13 for per-channel DequantizeLinear"));
      SetDefaultOpset(model, 13);
      plan.opset = 13;
      plan.int8_per_channel = true;
    } else {
      notes->push_back(absl::StrCat("opset ", plan.opset,
                                    " has no per-axis DequantizeLinear and cannot be raised to 13: "
                                    "INT8 weights use per-tensor scales"));
    }
  }
  return plan;
}

}  // namespace quantd::core
