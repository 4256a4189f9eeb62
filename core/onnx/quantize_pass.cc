// Weight quantization pass (INT4 MatMulNBits / QDQ, INT8 weight-only QDQ and
// dynamic): the driver. It checks the recipe, settles the opset (opset.h),
// walks every graph choosing a scheme per weight (weight_matcher.h) and hands
// each weight to its rewrite (int4_rewrite.h, int8_rewrite.h,
// embedding_rewrite.h). The graph is rewritten at once (graph_edit.h); tensor
// numerics run later, one weight at a time, in DeferredWeights inside
// OnnxModel::Save(), so peak memory stays bounded by the largest tensor.
#include "quantd/core/onnx/quantize_pass.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "embedding_rewrite.h"
#include "graph_edit.h"
#include "int4_rewrite.h"
#include "int8_rewrite.h"
#include "opset.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/layer_index.h"
#include "quantd/core/onnx/graph_utils.h"
#include "weight_matcher.h"
#include "weight_rewrite.h"

namespace quantd::core {
namespace {

enum class Scheme { kNone, kInt4, kInt8 };

// The rewrite a weight of a given scheme gets.
enum class Form { kSkipConv, kInt4Qdq, kMatMulNBits4, kMatMulNBits8, kInt8Dynamic, kInt8Qdq };

// Decoder layers in the model: one more than the highest layer number of a
// node of `ops` (its name, else its weight input's name), subgraphs included;
// 0 when none has one. Only these nodes count: the GenAI builder names its
// final norm "model.layers.<num_layers>.final_norm_layernorm".
void MaxLayer(const onnx::GraphProto& g, const std::set<std::string>& ops, int* max_layer) {
  for (const auto& n : g.node()) {
    for (const onnx::GraphProto* sub : Subgraphs(n)) MaxLayer(*sub, ops, max_layer);
    if (!IsDefaultDomain(n.domain()) || ops.count(n.op_type()) == 0) continue;
    std::optional<int> l = LayerIndex(n.name());
    if (!l.has_value() && n.input_size() >= 2) l = LayerIndex(n.input(1));
    if (l.has_value()) *max_layer = std::max(*max_layer, *l);
  }
}
int CountLayers(const onnx::GraphProto& g, const std::set<std::string>& ops) {
  int max_layer = -1;
  MaxLayer(g, ops, &max_layer);
  return max_layer + 1;
}

// One run of the pass over one model: the recipe checked, the graph walked,
// every weight handed to its rewrite.
class QuantizePass {
 public:
  QuantizePass(OnnxModel* model, const Recipe& recipe, Report* report, const RunContext& run)
      : model_(model), recipe_(recipe), report_(report), run_(run), edit_(model) {}

  absl::Status Run();

 private:
  absl::Status ProcessGraph(RewriteContext* ctx, onnx::GraphProto* g);
  absl::Status ProcessEmbedding(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n);
  // Whether the recipe excludes `n`; records the skip when it does.
  absl::StatusOr<bool> Excluded(const onnx::NodeProto& n);
  // The scheme of MatMul/Gemm/Conv `n` reading weight `w`: kNone for an LM
  // head kept float; `int8_reason` is set when the INT8 selection turned an
  // INT4 weight into INT8.
  Scheme SchemeFor(const onnx::NodeProto& n, const ConstWeight& w, std::string* int8_reason) const;
  Form FormFor(Scheme scheme, const onnx::NodeProto& n) const;
  // With GatherBlockQuantized embeddings: finds the LM head's weight in
  // `g` (the main graph) and whether the pass makes it MatMulNBits, so a
  // Gather of the same table can share its codes (tied_*).
  void PlanTiedHead(onnx::GraphProto* g);

  OnnxModel* const model_;
  const Recipe& recipe_;
  Report* const report_;
  const RunContext& run_;

  GraphEdit edit_;
  std::set<std::string> op_types_;
  NodeExclusion exclusion_;
  Int8Selection int8_selection_;  // INT8 layers/nodes inside an INT4 model
  const onnx::NodeProto* lm_head_ = nullptr;
  // The LM head's weight when it may share its codes with a tied embedding
  // (PlanTiedHead): its tensor, read transposed (as [N = vocab, K = hidden]),
  // and the MatMulNBits bits it gets (0: not MatMulNBits, tied_why_not_ says
  // why).
  const onnx::GraphProto* tied_graph_ = nullptr;
  ConstWeight tied_head_;
  int tied_bits_ = 0;
  std::string tied_why_not_;
  std::map<std::string, std::vector<std::string>> skipped_;  // reason -> node labels
  std::map<std::string, std::vector<std::string>> int8_chosen_;  // reason -> node labels
};

absl::StatusOr<bool> QuantizePass::Excluded(const onnx::NodeProto& n) {
  const bool excluded = exclusion_.Excludes(n.name());
  if (excluded) skipped_["excluded by name"].push_back(NodeLabel(n));
  return excluded;
}

absl::Status QuantizePass::ProcessEmbedding(RewriteContext* ctx, onnx::GraphProto* g,
                                            onnx::NodeProto* n) {
  if (n->input_size() < 2 || n->output_size() < 1) return absl::OkStatus();
  ConstWeight w;
  if (!ResolveWeight(g, n->input(0), &w)) return absl::OkStatus();  // data is not a constant
  QUANTD_ASSIGN_OR_RETURN(bool excluded, Excluded(*n));
  if (excluded) return absl::OkStatus();
  std::string reason = EmbeddingSkipReason(*n, w, recipe_.min_tensor_elements);
  if (!reason.empty()) {
    skipped_[reason].push_back(NodeLabel(*n));
    return absl::OkStatus();
  }
  const bool gbq = recipe_.embedding_op == EmbeddingOp::kGatherBlockQuantized;
  const int bits = ctx->opsets.embedding_int4 ? 4 : 8;
  if (gbq && g == tied_graph_ && tied_head_.tensor == w.tensor) {
    // A tied LM head: one copy of the table when both sides are the same
    // MatMulNBits codes (same bits; block size and symmetry are the recipe's).
    const int64_t hidden = Geometry(*w.tensor, true).k;
    std::string why = tied_why_not_;
    if (why.empty() && tied_bits_ != bits) {
      why = absl::StrCat("the LM head is ", tied_bits_, "-bit MatMulNBits, the embedding ", bits,
                         "-bit");
    }
    if (why.empty() && hidden % recipe_.block_size != 0) {
      why = absl::StrCat("hidden size ", hidden, " is not a multiple of block_size ",
                         recipe_.block_size);
    }
    if (why.empty()) return RewriteTiedEmbedding(ctx, g, n, tied_head_, true, bits);
    ctx->notes.insert(absl::StrCat("tied embedding / LM head '", w.tensor->name(),
                                   "' quantized separately (two copies): ", why));
  }
  if (ctx->opsets.embedding_int4) return RewriteEmbeddingInt4(ctx, g, n, w);
  if (gbq) return RewriteEmbeddingGatherBlockQuantized8(ctx, g, n, w);
  return RewriteEmbeddingInt8(ctx, g, n, w);
}

Scheme QuantizePass::SchemeFor(const onnx::NodeProto& n, const ConstWeight& w,
                               std::string* int8_reason) const {
  Scheme scheme = recipe_.precision == Precision::kInt4 ? Scheme::kInt4 : Scheme::kInt8;
  if (&n == lm_head_) {
    switch (recipe_.lm_head.value_or(LmHeadMode::kFloat)) {
      case LmHeadMode::kFloat:
        return Scheme::kNone;
      case LmHeadMode::kInt8:
        scheme = Scheme::kInt8;
        break;
      case LmHeadMode::kInt4:
        scheme = Scheme::kInt4;
        break;
    }
  }
  if (scheme == Scheme::kInt4 && !int8_selection_.empty()) {
    std::optional<int> layer = LayerIndex(n.name());
    if (!layer.has_value()) layer = LayerIndex(w.tensor->name());
    *int8_reason = int8_selection_.Reason(n.name(), layer);
    if (!int8_reason->empty()) scheme = Scheme::kInt8;
  }
  return scheme;
}

Form QuantizePass::FormFor(Scheme scheme, const onnx::NodeProto& n) const {
  if (scheme == Scheme::kInt4) {
    if (n.op_type() == "Conv") return Form::kSkipConv;
    if (recipe_.int4_format == Int4Format::kQdq && recipe_.precision == Precision::kInt4) {
      return Form::kInt4Qdq;
    }
    return Form::kMatMulNBits4;
  }
  if (recipe_.int8_mode == Int8Mode::kMatMulNBits && n.op_type() != "Conv") {
    return Form::kMatMulNBits8;
  }
  if (recipe_.precision == Precision::kInt8 && recipe_.int8_mode == Int8Mode::kDynamic) {
    return Form::kInt8Dynamic;
  }
  return Form::kInt8Qdq;
}

void QuantizePass::PlanTiedHead(onnx::GraphProto* g) {
  if (recipe_.embedding_op != EmbeddingOp::kGatherBlockQuantized || KeepEmbeddings(recipe_) ||
      lm_head_ == nullptr) {
    return;
  }
  const onnx::NodeProto& n = *lm_head_;
  ConstWeight w;
  if (n.input_size() < 2 || !ResolveWeight(g, n.input(1), &w)) return;
  bool transposed = w.transpose != nullptr;
  if (n.op_type() == "Gemm" && IntAttr(n, "transB", 0) != 0) transposed = !transposed;
  if (!transposed) return;  // the tensor is [hidden, vocab]: no Gather reads its rows
  tied_graph_ = g;
  tied_head_ = w;
  std::string ignored;
  const Scheme scheme = SchemeFor(n, w, &ignored);
  const Form form = scheme == Scheme::kNone ? Form::kInt8Qdq : FormFor(scheme, n);
  if (op_types_.count(n.op_type()) == 0) {
    tied_why_not_ = absl::StrCat("the LM head's op ", n.op_type(), " is not quantized");
  } else if (exclusion_.Excludes(n.name())) {
    tied_why_not_ = "the LM head is excluded";
  } else if (std::string reason = SkipReason(n, w, recipe_.min_tensor_elements); !reason.empty()) {
    tied_why_not_ = absl::StrCat("the LM head is not quantized (", reason, ")");
  } else if (scheme == Scheme::kNone) {
    tied_why_not_ = "the LM head stays float (--lm-head float)";
  } else if (form == Form::kMatMulNBits4 || form == Form::kMatMulNBits8) {
    tied_bits_ = form == Form::kMatMulNBits4 ? 4 : 8;
  } else {
    tied_why_not_ =
        "the LM head is not quantized to MatMulNBits (INT4 QDQ, or INT8 QDQ / dynamic)";
  }
}

absl::Status QuantizePass::ProcessGraph(RewriteContext* ctx, onnx::GraphProto* g) {
  std::vector<onnx::NodeProto*> nodes;
  for (auto& n : *g->mutable_node()) nodes.push_back(&n);
  for (onnx::NodeProto* n : nodes) {
    for (onnx::GraphProto* sub : Subgraphs(n)) QUANTD_RETURN_IF_ERROR(ProcessGraph(ctx, sub));
    if (!KeepEmbeddings(recipe_) && n->op_type() == "Gather" && IsDefaultDomain(n->domain())) {
      QUANTD_RETURN_IF_ERROR(ProcessEmbedding(ctx, g, n));
      continue;
    }
    if (!IsDefaultDomain(n->domain()) || op_types_.count(n->op_type()) == 0) continue;
    if (n->input_size() < 2 || n->output_size() < 1) continue;
    ConstWeight w;
    if (!ResolveWeight(g, n->input(1), &w)) continue;  // activation x activation
    const std::string label = NodeLabel(*n);
    QUANTD_ASSIGN_OR_RETURN(bool excluded, Excluded(*n));
    if (excluded) continue;
    std::string reason = SkipReason(*n, w, recipe_.min_tensor_elements);
    if (!reason.empty()) {
      skipped_[reason].push_back(label);
      continue;
    }
    std::string int8_reason;
    const Scheme scheme = SchemeFor(*n, w, &int8_reason);
    if (scheme == Scheme::kNone) {
      skipped_["LM head kept float (--lm-head float)"].push_back(label);
      continue;
    }
    if (!int8_reason.empty()) int8_chosen_[int8_reason].push_back(label);
    // B as the consumer reads it: [K, N], or stored transposed.
    bool transposed = w.transpose != nullptr;
    if (n->op_type() == "Gemm" && IntAttr(*n, "transB", 0) != 0) transposed = !transposed;
    switch (FormFor(scheme, *n)) {
      case Form::kSkipConv:
        skipped_["INT4 applies to MatMul/Gemm, not Conv"].push_back(label);
        break;
      case Form::kInt4Qdq:
        QUANTD_RETURN_IF_ERROR(RewriteInt4Qdq(ctx, g, n, w, transposed));
        break;
      case Form::kMatMulNBits4:
        QUANTD_RETURN_IF_ERROR(RewriteMatMulNBits(ctx, g, n, w, transposed));
        break;
      case Form::kMatMulNBits8:
        QUANTD_RETURN_IF_ERROR(RewriteMatMulNBits(ctx, g, n, w, transposed, 8));
        break;
      case Form::kInt8Dynamic:
        QUANTD_RETURN_IF_ERROR(RewriteInt8Dynamic(ctx, g, n, w, transposed));
        break;
      case Form::kInt8Qdq:
        QUANTD_RETURN_IF_ERROR(RewriteInt8Qdq(ctx, g, n, w, transposed));
        break;
    }
  }
  edit_.RebuildNodes(g);
  return absl::OkStatus();
}

absl::Status QuantizePass::Run() {
  if (recipe_.precision != Precision::kInt4 && recipe_.precision != Precision::kInt8) {
    return absl::InvalidArgumentError("weight quantization needs precision int4 or int8");
  }
  QUANTD_ASSIGN_OR_RETURN(exclusion_, NodeExclusion::Create(recipe_));
  if (!recipe_.op_types.empty()) {
    op_types_.insert(recipe_.op_types.begin(), recipe_.op_types.end());
  } else if (recipe_.precision == Precision::kInt4) {
    op_types_ = {"MatMul"};
  } else {
    op_types_ = {"MatMul", "Gemm", "Conv"};
  }
  for (const auto& op : op_types_) {
    if (op != "MatMul" && op != "Gemm" && op != "Conv") {
      return absl::InvalidArgumentError(
          absl::StrCat("op_types: '", op, "' cannot be quantized; use MatMul, Gemm and/or Conv"));
    }
  }
  report_->tensors_total = model_->Tensors().size();
  onnx::ModelProto& proto = model_->proto();
  const bool has_embedding =
      !KeepEmbeddings(recipe_) && HasEmbedding(proto.mutable_graph(), recipe_.min_tensor_elements);
  QUANTD_ASSIGN_OR_RETURN(OpsetPlan opsets,
                          PlanOpsets(recipe_, has_embedding, &proto, &report_->notes));
  RewriteContext ctx{.recipe = recipe_,
                     .opsets = opsets,
                     .model = model_,
                     .report = report_,
                     .run = &run_,
                     .edit = &edit_};
  QUANTD_ASSIGN_OR_RETURN(lm_head_, LocateLmHead(proto.graph(), recipe_.lm_head_node));
  const int num_layers = CountLayers(proto.graph(), op_types_);
  QUANTD_ASSIGN_OR_RETURN(int8_selection_, Int8Selection::Create(recipe_, num_layers));
  PlanTiedHead(proto.mutable_graph());
  QUANTD_RETURN_IF_ERROR(ProcessGraph(&ctx, proto.mutable_graph()));
  QUANTD_RETURN_IF_ERROR(edit_.FinishSources());
  if (ctx.used_ms_domain) EnsureMsDomain(&proto);
  for (const auto& note : ctx.notes) report_->notes.push_back(note);
  for (const auto& [reason, nodes] : int8_chosen_) {
    std::vector<std::string> shown(nodes.begin(),
                                   nodes.begin() + std::min<size_t>(nodes.size(), 5));
    report_->notes.push_back(absl::StrCat("INT8 inside INT4 (", reason, "): ", nodes.size(),
                                          " node(s): ", absl::StrJoin(shown, ", "),
                                          nodes.size() > 5 ? ", ..." : ""));
  }
  if (!int8_selection_.empty() && int8_chosen_.empty()) {
    // Asked for, found nothing: say why rather than ship an all-INT4 model quietly.
    report_->notes.push_back(
        absl::StrCat("INT8 inside INT4: int8_layers/int8_nodes selected no quantized weight (",
                     num_layers == 0 ? "no layer number in any node or weight name"
                                     : absl::StrCat(num_layers, " layer(s) found in the names"),
                     "); the model is INT4 throughout"));
  }
  for (const auto& [reason, nodes] : skipped_) {
    std::vector<std::string> shown(nodes.begin(),
                                   nodes.begin() + std::min<size_t>(nodes.size(), 5));
    report_->notes.push_back(absl::StrCat("not quantized (", reason, "): ", nodes.size(),
                                          " node(s): ", absl::StrJoin(shown, ", "),
                                          nodes.size() > 5 ? ", ..." : ""));
  }
  if (report_->tensors_converted == 0) {
    report_->notes.push_back("no weight matched: nothing was quantized");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status QuantizeOnnxWeights(OnnxModel* model, const Recipe& recipe, Report* report,
                                 const RunContext& ctx) {
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
  QuantizePass pass(model, recipe, report, ctx);
  return pass.Run();
}

}  // namespace quantd::core
