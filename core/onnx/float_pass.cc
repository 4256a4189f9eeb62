#include "quantd/core/onnx/float_pass.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "fp16_safety.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/populate.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/onnx/graph_utils.h"
#include "quantd/core/onnx/onnx_types.h"

namespace quantd::core {

const std::vector<std::string>& DefaultFp16OpBlockList() {
  // Ops that need FP32 (indices, scales, accumulations, random draws), ML
  // (ai.onnx.ml) ops defined on float only, and ops ORT's CPU provider has no
  // FP16 kernel for.
  static const auto* const kList = new std::vector<std::string>{
      "ArrayFeatureExtractor",
      "Binarizer",
      "CastMap",
      "CategoryMapper",
      "DictVectorizer",
      "FeatureVectorizer",
      "Imputer",
      "LabelEncoder",
      "LinearClassifier",
      "LinearRegressor",
      "Normalizer",
      "OneHotEncoder",
      "SVMClassifier",
      "SVMRegressor",
      "Scaler",
      "TreeEnsembleClassifier",
      "TreeEnsembleRegressor",
      "ZipMap",
      "NonMaxSuppression",
      "TopK",
      "RoiAlign",
      "Resize",
      "Upsample",
      "Range",
      "CumSum",
      "RandomNormal",
      "RandomNormalLike",
      "RandomUniform",
      "RandomUniformLike",
      "Multinomial",
      "DynamicQuantizeLinear",
      "QuantizeLinear",
      "Min",
      "Max",
  };
  return *kList;
}

namespace {

bool IsTypeAgnosticInput(const onnx::NodeProto& n) {
  // Ops that accept any element type on their inputs: never cast in front.
  static const std::unordered_set<std::string> kOps = {"Cast", "Shape", "Size", "CastLike"};
  return n.domain().empty() && kOps.count(n.op_type()) > 0;
}

class FloatPass {
 public:
  FloatPass(OnnxModel* model, const Recipe& recipe, Report* report, const RunContext& ctx)
      : model_(model),
        report_(report),
        ctx_(ctx),
        keep_io_(recipe.keep_io_types),
        names_(model->proto().graph()) {
    if (recipe.precision == Precision::kFp16) {
      sources_ = {kOnnxFloat};
      target_ = kOnnxFloat16;
      const auto& ops = recipe.op_block_list ? *recipe.op_block_list : DefaultFp16OpBlockList();
      op_block_.insert(ops.begin(), ops.end());
    } else {
      sources_ = {kOnnxFloat16, kOnnxBfloat16};
      target_ = kOnnxFloat;
      if (recipe.op_block_list)
        op_block_.insert(recipe.op_block_list->begin(), recipe.op_block_list->end());
    }
    node_block_.insert(recipe.node_block_list.begin(), recipe.node_block_list.end());
    if (recipe.precision == Precision::kFp16 && !recipe.force_fp16) {
      safety_ = std::make_unique<Fp16SafetyAnalysis>(model, ctx);
    }
  }

  absl::Status Run();

 private:
  bool IsSource(int32_t t) const { return sources_.count(t) > 0; }
  int32_t Orig(const std::string& v) const {
    auto it = orig_.find(v);
    return it == orig_.end() ? kOnnxUndefined : it->second;
  }
  int32_t Stored(const std::string& v) const {
    auto it = stored_.find(v);
    return it == stored_.end() ? Orig(v) : it->second;
  }
  void Record(const std::string& v, int32_t t) {
    if (!v.empty() && t != kOnnxUndefined) orig_.emplace(v, t);
  }

  std::string UniqueName(const std::string& base) { return names_.Unique(base); }
  void InferTypes(onnx::GraphProto* g);
  int32_t InferOutput(const onnx::NodeProto& n, int i) const;
  void MarkBlocked(onnx::GraphProto* g, bool inherited);
  void CollectConsumers(onnx::GraphProto* g);
  bool AllConsumersBlocked(const std::string& v) const;
  absl::Status ConvertTensors();
  void ConvertTensor(onnx::TensorProto* t);
  void AssignStoredTypes(onnx::GraphProto* g, bool is_main);
  void RewriteGraph(onnx::GraphProto* g, bool is_main);
  void RetypeValueInfos(onnx::GraphProto* g, bool is_main);
  void RemoveDeadCasts(onnx::GraphProto* main);
  void RenameEverywhere(onnx::GraphProto* g, const std::string& from, const std::string& to);
  void RemoveIdentityCasts(onnx::GraphProto* g, bool is_main);
  onnx::NodeProto* MakeCast(const std::string& in, const std::string& out, int32_t to);

  OnnxModel* const model_;
  Report* const report_;
  const RunContext& ctx_;  // threads for the deferred conversions in Save()
  const bool keep_io_;
  std::set<int32_t> sources_;
  int32_t target_ = kOnnxUndefined;
  std::unordered_set<std::string> op_block_, node_block_;
  // FP16 without force_fp16: finds the nodes FP16 would corrupt (kept FP32).
  std::unique_ptr<Fp16SafetyAnalysis> safety_;

  std::unordered_map<std::string, int32_t> orig_;    // value -> element type before
  std::unordered_map<std::string, int32_t> stored_;  // value -> element type after
  std::unordered_set<const onnx::NodeProto*> blocked_;
  std::unordered_map<std::string, std::vector<const onnx::NodeProto*>> consumers_;
  NameTable names_;
  std::unordered_set<std::string> main_inputs_;  // real graph inputs (not initializers)
  std::unordered_set<std::string> converted_;    // tensors (by value name) converted
  std::unordered_map<std::string, std::string> cast_sources_;  // Cast output -> its input
};

int32_t FloatPass::InferOutput(const onnx::NodeProto& n, int i) const {
  auto in = [&](int k) -> int32_t {
    return k < n.input_size() && !n.input(k).empty() ? Orig(n.input(k)) : kOnnxUndefined;
  };
  auto int_attr = [&](const char* name, int32_t dflt) -> int32_t {
    return static_cast<int32_t>(IntAttr(n, name, dflt));
  };
  const std::string& op = n.op_type();
  if (op == "Cast") return int_attr("to", kOnnxUndefined);
  if (op == "CastLike") return in(1);
  if (op == "Shape" || op == "Size" || op == "NonZero" || op == "ArgMax" || op == "ArgMin" ||
      op == "NonMaxSuppression") {
    return kOnnxInt64;
  }
  if (op == "Equal" || op == "Less" || op == "Greater" || op == "LessOrEqual" ||
      op == "GreaterOrEqual" || op == "And" || op == "Or" || op == "Xor" || op == "Not" ||
      op == "IsNaN" || op == "IsInf") {
    return kOnnxBool;
  }
  if (op == "Constant" || op == "ConstantOfShape") {
    if (const auto* a = FindAttr(n, "value")) return a->t().data_type();
    if (FindAttr(n, "value_float") || FindAttr(n, "value_floats")) return kOnnxFloat;
    if (FindAttr(n, "value_int") || FindAttr(n, "value_ints")) return kOnnxInt64;
    if (FindAttr(n, "value_string") || FindAttr(n, "value_strings")) return kOnnxString;
    return op == "ConstantOfShape" ? kOnnxFloat : kOnnxUndefined;
  }
  if (op == "TopK") return i == 1 ? kOnnxInt64 : in(0);
  if ((op == "MaxPool" && i == 1) || (op == "Unique" && i > 0)) return kOnnxInt64;
  if (op == "DynamicQuantizeLinear") return i == 1 ? kOnnxFloat : kOnnxUint8;
  if (op == "QuantizeLinear") {
    int32_t zp = in(2);
    return zp != kOnnxUndefined ? zp : int_attr("output_dtype", kOnnxUint8);
  }
  if (op == "DequantizeLinear") return in(1);
  if (op == "MatMulInteger" || op == "ConvInteger") return kOnnxInt32;
  if (op == "Where") return in(1);
  if (op == "EyeLike" || op == "RandomNormalLike" || op == "RandomUniformLike") {
    return int_attr("dtype", in(0));
  }
  if (op == "RandomNormal" || op == "RandomUniform") return int_attr("dtype", kOnnxFloat);
  if (op == "Multinomial") return int_attr("dtype", kOnnxInt32);
  if (op == "OneHot") return in(2);
  if (op == "If" || op == "Loop" || op == "Scan") {
    const char* graph_attr = op == "If" ? "then_branch" : "body";
    int offset = op == "Loop" ? 1 : 0;
    if (const auto* a = FindAttr(n, graph_attr)) {
      if (i + offset < a->g().output_size()) return ElemType(a->g().output(i + offset).type());
    }
    return kOnnxUndefined;
  }
  // Elementwise, shape and most contrib ops: the type of the first input.
  int32_t t = in(0);
  for (int k = 1; t == kOnnxUndefined && k < n.input_size(); ++k) t = in(k);
  return t;
}

void FloatPass::InferTypes(onnx::GraphProto* g) {
  for (const auto& v : g->input()) Record(v.name(), ElemType(v.type()));
  for (const auto& t : g->initializer()) Record(t.name(), t.data_type());
  for (const auto& v : g->value_info()) Record(v.name(), ElemType(v.type()));
  for (const auto& v : g->output()) Record(v.name(), ElemType(v.type()));
  for (auto& n : *g->mutable_node()) {
    for (onnx::GraphProto* sub : Subgraphs(&n)) InferTypes(sub);
    for (int i = 0; i < n.output_size(); ++i) {
      if (orig_.count(n.output(i)) == 0) Record(n.output(i), InferOutput(n, i));
    }
  }
}

void FloatPass::MarkBlocked(onnx::GraphProto* g, bool inherited) {
  // The nodes FP16 would break (kept FP32 unless blocked anyway).
  std::unordered_map<const onnx::NodeProto*, Fp16Hazard> hazards;
  if (safety_) hazards = safety_->Analyze(*g);
  for (auto& n : *g->mutable_node()) {
    if (n.op_type() == "Cast" && n.domain().empty() && n.input_size() == 1 &&
        n.output_size() == 1) {
      cast_sources_[n.output(0)] = n.input(0);
    }
    bool blocked = inherited || (op_block_.count(n.op_type()) > 0) ||
                   (!n.name().empty() && node_block_.count(n.name()) > 0);
    if (auto h = hazards.find(&n); !blocked && h != hazards.end()) {
      const Fp16Hazard& hazard = h->second;
      report_->kept_fp32.push_back(
          {n.name(), n.op_type(), hazard.input, hazard.max_abs, hazard.reason});
      blocked = true;
    }
    if (blocked) blocked_.insert(&n);
    for (onnx::GraphProto* sub : Subgraphs(&n)) MarkBlocked(sub, blocked);
  }
}

void FloatPass::CollectConsumers(onnx::GraphProto* g) {
  for (auto& n : *g->mutable_node()) {
    for (const auto& s : n.input()) {
      if (!s.empty()) consumers_[s].push_back(&n);
    }
    for (onnx::GraphProto* sub : Subgraphs(&n)) CollectConsumers(sub);
  }
}

bool FloatPass::AllConsumersBlocked(const std::string& v) const {
  auto it = consumers_.find(v);
  if (it == consumers_.end() || it->second.empty()) return false;
  for (const auto* n : it->second) {
    if (blocked_.count(n) == 0) return false;
  }
  return true;
}

void FloatPass::ConvertTensor(onnx::TensorProto* t) {
  const int32_t from = t->data_type();
  const int32_t to = target_;
  auto count = ElementCount({t->dims().data(), static_cast<size_t>(t->dims_size())});
  const uint64_t n = count.ok() ? *count : 0;
  TensorReport entry;
  entry.name = t->name();
  entry.shape.assign(t->dims().begin(), t->dims().end());
  entry.dtype_before = OnnxTypeName(from);
  entry.dtype_after = OnnxTypeName(to);
  entry.bytes_before = n * (OnnxTypeBits(from) / 8);
  entry.bytes_after = n * (OnnxTypeBits(to) / 8);
  report_->tensors_converted++;
  report_->bytes_before += entry.bytes_before;
  report_->bytes_after += entry.bytes_after;
  const size_t index = report_->tensors.size();
  report_->tensors.push_back(std::move(entry));

  auto src = std::make_shared<onnx::TensorProto>(model_->TakeData(t));
  t->set_data_type(to);
  OnnxModel* model = model_;
  Report* report = report_;
  const RunContext* ctx = &ctx_;
  model_->Defer(
      t, [model, report, ctx, src, from, to, n, index]() -> absl::StatusOr<std::vector<uint8_t>> {
        auto count = [&](const NarrowingStats& stats) {
          report->values_clamped += stats.clamped;
          report->values_flushed += stats.flushed;
          report->tensors[index].values_clamped = stats.clamped;
          report->tensors[index].values_flushed = stats.flushed;
        };
        if (from == kOnnxFloat && model->HasHalfProducer(*src)) {
          // Made from its source (a checkpoint's rows) without float32 bytes.
          NarrowingStats stats;
          QUANTD_ASSIGN_OR_RETURN(std::vector<uint8_t> out, model->ProduceHalves(*src, &stats));
          if (out.size() != n * sizeof(uint16_t)) {
            return absl::InternalError(absl::StrCat("tensor '", src->name(), "': ", out.size(),
                                                    " bytes of halves for ", n, " values"));
          }
          count(stats);
          return out;
        }
        QUANTD_ASSIGN_OR_RETURN(TensorData in, model->Read(*src));
        if (from == kOnnxFloat) {
          // A produced float32 tensor is narrowed where it lies; one read
          // from a file goes to a new buffer of halves.
          std::vector<uint8_t> out;
          if (in.size() == n * sizeof(float)) out = in.TakeOwned();
          NarrowingStats stats;
          if (!out.empty()) {
            FloatToHalfInPlace(out.data(), n, *ctx, &stats);
            out.resize(n * sizeof(uint16_t));
          } else {
            out = PopulatedBuffer(n * sizeof(uint16_t), *ctx);
            FloatToHalfSpan(in.as<float>().data(), reinterpret_cast<uint16_t*>(out.data()), n, *ctx,
                            &stats);
          }
          count(stats);
          return out;
        }
        // Widening: every element is written below (the chunks cover [0, n)).
        std::vector<uint8_t> out = PopulatedBuffer(n * (OnnxTypeBits(to) / 8), *ctx);
        constexpr uint64_t kChunk = 1 << 16;
        const int64_t chunks = static_cast<int64_t>((n + kChunk - 1) / kChunk);
        const uint16_t* x = in.as<uint16_t>().data();
        float* y = reinterpret_cast<float*>(out.data());
        ctx->ParallelFor(chunks, [&](int64_t c, int) {
          const uint64_t b = static_cast<uint64_t>(c) * kChunk,
                         e = std::min<uint64_t>(n, b + kChunk);
          if (from == kOnnxFloat16) {
            HalfToFloatSpan(x + b, y + b, e - b);
          } else {
            Bfloat16ToFloatSpan(x + b, y + b, e - b);
          }
        });
        return out;
      });
}

absl::Status FloatPass::ConvertTensors() {
  std::vector<TensorSite> sites = model_->Tensors();
  report_->tensors_total = sites.size();
  for (TensorSite& site : sites) {
    onnx::TensorProto* t = site.tensor;
    if (!IsSource(t->data_type())) continue;
    if (site.node == nullptr) {
      // Initializer: stays when every consumer keeps the original type.
      if (AllConsumersBlocked(t->name())) continue;
      ConvertTensor(t);
      converted_.insert(t->name());
    } else {
      const onnx::NodeProto* node = site.node;
      if (blocked_.count(node) > 0) continue;
      if (node->op_type() == "Constant" && node->output_size() == 1) {
        if (AllConsumersBlocked(node->output(0))) continue;
        converted_.insert(node->output(0));
      } else if (node->op_type() == "ConstantOfShape" && node->output_size() == 1) {
        converted_.insert(node->output(0));
      }
      ConvertTensor(t);
    }
  }
  return absl::OkStatus();
}

void FloatPass::AssignStoredTypes(onnx::GraphProto* g, bool is_main) {
  std::unordered_set<std::string> inits;
  for (const auto& t : g->initializer()) inits.insert(t.name());
  for (const auto& v : g->input()) {
    if (!IsSource(Orig(v.name())) || inits.count(v.name())) continue;
    if (is_main) main_inputs_.insert(v.name());
    stored_[v.name()] = (is_main && keep_io_) ? Orig(v.name()) : target_;
  }
  for (const auto& t : g->initializer()) {
    if (IsSource(t.name().empty() ? 0 : Orig(t.name()))) {
      stored_[t.name()] = converted_.count(t.name()) ? target_ : Orig(t.name());
    }
  }
  for (auto& n : *g->mutable_node()) {
    const bool blocked = blocked_.count(&n) > 0;
    const bool constant = n.op_type() == "Constant";
    for (const auto& out : n.output()) {
      if (!IsSource(Orig(out))) continue;
      if (constant) {
        stored_[out] = converted_.count(out) ? target_ : Orig(out);
      } else {
        stored_[out] = blocked ? Orig(out) : target_;
      }
    }
    for (onnx::GraphProto* sub : Subgraphs(&n)) {
      // A subgraph's formal inputs follow its owner node.
      for (const auto& v : sub->input()) {
        if (IsSource(Orig(v.name()))) stored_[v.name()] = blocked ? Orig(v.name()) : target_;
      }
      AssignStoredTypes(sub, false);
    }
  }
}

onnx::NodeProto* FloatPass::MakeCast(const std::string& in, const std::string& out, int32_t to) {
  auto* node = new onnx::NodeProto();
  node->set_op_type("Cast");
  node->set_name(UniqueName(absl::StrCat(out, "_node")));
  node->add_input(in);
  node->add_output(out);
  auto* a = node->add_attribute();
  a->set_name("to");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(to);
  report_->casts_inserted++;
  return node;
}

void FloatPass::RenameEverywhere(onnx::GraphProto* g, const std::string& from,
                                 const std::string& to) {
  for (auto& n : *g->mutable_node()) {
    for (auto& s : *n.mutable_input()) {
      if (s == from) s = to;
    }
    for (auto& s : *n.mutable_output()) {
      if (s == from) s = to;
    }
    for (onnx::GraphProto* sub : Subgraphs(&n)) RenameEverywhere(sub, from, to);
  }
  for (auto& v : *g->mutable_value_info()) {
    if (v.name() == from) v.set_name(to);
  }
}

void FloatPass::RewriteGraph(onnx::GraphProto* g, bool is_main) {
  // Detach nodes (objects stay alive and keep their addresses).
  std::vector<onnx::NodeProto*> nodes;
  nodes.reserve(g->node_size());
  while (g->node_size() > 0) nodes.push_back(g->mutable_node()->ReleaseLast());
  std::reverse(nodes.begin(), nodes.end());

  std::map<std::pair<std::string, int32_t>, std::string> casts;  // (value, type) -> cast output
  for (onnx::NodeProto* n : nodes) {
    const bool blocked = blocked_.count(n) > 0;
    if (!blocked && n->op_type() == "Cast" && n->domain().empty()) {
      for (auto& a : *n->mutable_attribute()) {
        if (a.name() == "to" && IsSource(static_cast<int32_t>(a.i()))) a.set_i(target_);
      }
    }
    if (!blocked && n->op_type() == "EyeLike") {
      for (auto& a : *n->mutable_attribute()) {
        if (a.name() == "dtype" && IsSource(static_cast<int32_t>(a.i()))) a.set_i(target_);
      }
    }
    if (!blocked && n->op_type() == "ConstantOfShape" && FindAttr(*n, "value") == nullptr &&
        n->output_size() == 1 && IsSource(Orig(n->output(0)))) {
      // The default value is a FLOAT 0: make it an explicit zero of the target type.
      auto* a = n->add_attribute();
      a->set_name("value");
      a->set_type(onnx::AttributeProto::TENSOR);
      a->mutable_t()->set_data_type(target_);
      a->mutable_t()->add_dims(1);
      a->mutable_t()->set_raw_data(std::string(OnnxTypeBits(target_) / 8, '\0'));
    }
    if (!IsTypeAgnosticInput(*n)) {
      for (auto& in : *n->mutable_input()) {
        if (in.empty() || !IsSource(Orig(in))) continue;
        const int32_t need = blocked ? Orig(in) : target_;
        if (Stored(in) == need) continue;
        // Cast from the source of an existing Cast rather than chaining two
        // (int64 -> fp16 -> fp32 would also lose integer precision).
        std::string source = in;
        if (auto c = cast_sources_.find(in); c != cast_sources_.end()) source = c->second;
        if (Stored(source) == need) {
          in = source;
          continue;
        }
        auto key = std::make_pair(source, need);
        auto it = casts.find(key);
        if (it == casts.end()) {
          std::string out = UniqueName(absl::StrCat(source, "_", OnnxTypeName(need)));
          g->mutable_node()->AddAllocated(MakeCast(source, out, need));
          stored_[out] = need;
          orig_[out] = need;
          it = casts.emplace(key, out).first;
        }
        in = it->second;
      }
    }
    g->mutable_node()->AddAllocated(n);
    for (onnx::GraphProto* sub : Subgraphs(n)) RewriteGraph(sub, false);
  }

  if (is_main) {
    // Graph outputs: their original type with keep_io_types, else the target.
    for (auto& out : *g->mutable_output()) {
      const std::string name = out.name();
      if (!IsSource(Orig(name))) continue;
      const int32_t want = keep_io_ ? Orig(name) : target_;
      if (Stored(name) == want) continue;
      std::string inner = UniqueName(absl::StrCat(name, "_", OnnxTypeName(Stored(name))));
      RenameEverywhere(g, name, inner);
      stored_[inner] = Stored(name);
      orig_[inner] = Orig(name);
      g->mutable_node()->AddAllocated(MakeCast(inner, name, want));
      stored_[name] = want;
    }
  }
}

void FloatPass::RemoveIdentityCasts(onnx::GraphProto* g, bool is_main) {
  std::unordered_set<std::string> outputs, produced_here;
  for (const auto& o : g->output()) outputs.insert(o.name());
  for (const auto& n : g->node()) {
    for (const auto& o : n.output()) produced_here.insert(o);
  }
  for (int i = 0; i < g->node_size();) {
    onnx::NodeProto* n = g->mutable_node(i);
    for (onnx::GraphProto* sub : Subgraphs(n)) RemoveIdentityCasts(sub, false);
    const auto* to = FindAttr(*n, "to");
    const bool identity = n->op_type() == "Cast" && n->domain().empty() && to != nullptr &&
                          n->input_size() == 1 && n->output_size() == 1 && blocked_.count(n) == 0 &&
                          Stored(n->input(0)) == static_cast<int32_t>(to->i());
    if (!identity) {
      ++i;
      continue;
    }
    const std::string in = n->input(0), out = n->output(0);
    if (outputs.count(out) == 0) {
      // The input already has the target type: drop the cast, rewire its users.
      g->mutable_node()->DeleteSubrange(i, 1);
      RenameEverywhere(g, out, in);
      continue;
    }
    if (produced_here.count(in) > 0 && outputs.count(in) == 0) {
      // Feeds a graph output: let the producer write the output name directly.
      g->mutable_node()->DeleteSubrange(i, 1);
      RenameEverywhere(g, in, out);
      continue;
    }
    ++i;
  }
}

void FloatPass::RemoveDeadCasts(onnx::GraphProto* main) {
  // Casts whose output nobody reads any more (e.g. after chain shortcuts).
  std::unordered_set<std::string> used;
  std::function<void(const onnx::GraphProto&)> collect = [&](const onnx::GraphProto& g) {
    for (const auto& o : g.output()) used.insert(o.name());
    for (const auto& n : g.node()) {
      for (const auto& i : n.input()) used.insert(i);
      for (const auto& a : n.attribute()) {
        if (a.has_g()) collect(a.g());
        for (const auto& sg : a.graphs()) collect(sg);
      }
    }
  };
  collect(*main);
  std::function<void(onnx::GraphProto*)> sweep = [&](onnx::GraphProto* g) {
    for (int i = g->node_size() - 1; i >= 0; --i) {
      onnx::NodeProto* n = g->mutable_node(i);
      for (onnx::GraphProto* sub : Subgraphs(n)) sweep(sub);
      if (n->op_type() == "Cast" && n->domain().empty() && n->output_size() == 1 &&
          used.count(n->output(0)) == 0) {
        g->mutable_node()->DeleteSubrange(i, 1);
      }
    }
  };
  sweep(main);
}

void FloatPass::RetypeValueInfos(onnx::GraphProto* g, bool is_main) {
  auto retype = [this](onnx::ValueInfoProto* v) {
    if (!v->type().has_tensor_type()) return;
    int32_t t = Stored(v->name());
    if (t != kOnnxUndefined && IsSource(v->type().tensor_type().elem_type())) {
      v->mutable_type()->mutable_tensor_type()->set_elem_type(t);
    }
  };
  for (auto& v : *g->mutable_input()) retype(&v);
  for (auto& v : *g->mutable_output()) retype(&v);
  // value_info must not repeat graph inputs/outputs (renames can create that).
  std::unordered_set<std::string> edges;
  for (const auto& v : g->input()) edges.insert(v.name());
  for (const auto& v : g->output()) edges.insert(v.name());
  auto* infos = g->mutable_value_info();
  for (int i = infos->size() - 1; i >= 0; --i) {
    if (edges.count(infos->Get(i).name())) infos->DeleteSubrange(i, 1);
  }
  for (auto& v : *g->mutable_value_info()) retype(&v);
  for (auto& n : *g->mutable_node()) {
    for (onnx::GraphProto* sub : Subgraphs(&n)) RetypeValueInfos(sub, false);
  }
}

absl::Status FloatPass::Run() {
  onnx::GraphProto* main = model_->proto().mutable_graph();
  InferTypes(main);
  MarkBlocked(main, false);
  CollectConsumers(main);
  QUANTD_RETURN_IF_ERROR(ConvertTensors());
  AssignStoredTypes(main, true);
  RewriteGraph(main, true);
  RemoveIdentityCasts(main, true);
  RemoveDeadCasts(main);
  RetypeValueInfos(main, true);
  return absl::OkStatus();
}

}  // namespace

absl::Status ConvertFloatPrecision(OnnxModel* model, const Recipe& recipe, Report* report,
                                   const RunContext& ctx) {
  if (recipe.precision != Precision::kFp16 && recipe.precision != Precision::kFp32) {
    return absl::InvalidArgumentError("float conversion needs precision fp16 or fp32");
  }
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
  FloatPass pass(model, recipe, report, ctx);
  return pass.Run();
}

}  // namespace quantd::core
