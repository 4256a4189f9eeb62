#include "quantd/core/onnx/onnx_check.h"

#include <algorithm>
#include <exception>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "onnx/checker.h"
#include "onnx/defs/schema.h"
#include "onnx/shape_inference/implementation.h"

namespace quantd::core {
namespace {

// Small inline tensors keep their bytes in the skeleton: shape inference reads
// constant shapes, axes and pads from them (Reshape, Slice, ...).
constexpr size_t kKeepInlineBytes = 4096;
// A location that exists relative to any folder; the checker stats it.
constexpr char kStrippedLocation[] = ".";
// Domain given, in the skeleton only, to nodes checked for structure only.
constexpr char kUnverifiedDomain[] = "quantd.unverified";

struct HeldTensor {
  onnx::TensorProto* tensor;
  onnx::TensorProto data;
};

void StripTensor(onnx::TensorProto* t, std::vector<HeldTensor>* held) {
  if (t->data_type() == onnx::TensorProto::STRING) return;
  const bool external = t->data_location() == onnx::TensorProto::EXTERNAL;
  if (!external && t->ByteSizeLong() <= kKeepInlineBytes) return;
  held->push_back({t, {}});
  onnx::TensorProto& h = held->back().data;
  h.Swap(t);  // O(1): the bytes move, they are not copied
  t->set_name(h.name());
  t->set_data_type(h.data_type());
  *t->mutable_dims() = h.dims();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data();
  kv->set_key("location");
  kv->set_value(kStrippedLocation);
}

void StripGraph(onnx::GraphProto* g, std::vector<HeldTensor>* held) {
  for (auto& t : *g->mutable_initializer()) StripTensor(&t, held);
  for (auto& n : *g->mutable_node()) {
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_t()) StripTensor(a.mutable_t(), held);
      for (auto& t : *a.mutable_tensors()) StripTensor(&t, held);
      if (a.has_g()) StripGraph(a.mutable_g(), held);
      for (auto& sg : *a.mutable_graphs()) StripGraph(&sg, held);
    }
  }
}

// Default-domain ops with a new version in opsets 18..23 (the ONNX operator
// changelog): attributes, inputs or type constraints that libonnx 1.12's
// newest schema does not know. Beyond kLastListedOpset every op is treated so.
struct NewerVersion {
  const char* op;
  int version;
};
constexpr int kLastListedOpset = 23;
constexpr NewerVersion kNewerVersions[] = {
    {"BitwiseAnd", 18}, {"BitwiseNot", 18}, {"BitwiseOr", 18}, {"BitwiseXor", 18},
    {"CenterCropPad", 18}, {"Col2Im", 18}, {"GroupNormalization", 18}, {"LpPool", 18},
    {"Mish", 18}, {"OptionalGetElement", 18}, {"OptionalHasElement", 18}, {"Pad", 18},
    {"Resize", 18}, {"ScatterElements", 18}, {"ScatterND", 18}, {"Split", 18},
    {"ReduceL1", 18}, {"ReduceL2", 18}, {"ReduceLogSum", 18}, {"ReduceLogSumExp", 18},
    {"ReduceMax", 18}, {"ReduceMean", 18}, {"ReduceMin", 18}, {"ReduceProd", 18},
    {"ReduceSumSquare", 18},
    {"AveragePool", 19}, {"Cast", 19}, {"CastLike", 19}, {"Constant", 19}, {"DeformConv", 19},
    {"DequantizeLinear", 19}, {"Equal", 19}, {"Identity", 19}, {"If", 19}, {"Loop", 19},
    {"QuantizeLinear", 19}, {"Reshape", 19}, {"Resize", 19}, {"Scan", 19}, {"Shape", 19},
    {"Size", 19},
    {"AffineGrid", 20}, {"ConstantOfShape", 20}, {"DFT", 20}, {"Gelu", 20}, {"GridSample", 20},
    {"ImageDecoder", 20}, {"IsInf", 20}, {"IsNaN", 20}, {"RegexFullMatch", 20},
    {"StringConcat", 20}, {"StringSplit", 20},
    {"Flatten", 21}, {"QLinearMatMul", 21}, {"Squeeze", 21}, {"Transpose", 21},
    {"Unsqueeze", 21}, {"Pad", 21}, {"DequantizeLinear", 21}, {"QuantizeLinear", 21},
    {"Acos", 22}, {"Acosh", 22}, {"Asin", 22}, {"Asinh", 22}, {"Atan", 22}, {"Atanh", 22},
    {"Bernoulli", 22}, {"Conv", 22}, {"ConvTranspose", 22}, {"Cos", 22}, {"Cosh", 22},
    {"Det", 22}, {"Dropout", 22}, {"Elu", 22}, {"EyeLike", 22}, {"GRU", 22},
    {"GlobalAveragePool", 22}, {"GlobalLpPool", 22}, {"GlobalMaxPool", 22},
    {"HardSigmoid", 22}, {"HardSwish", 22}, {"InstanceNormalization", 22}, {"LSTM", 22},
    {"LpNormalization", 22}, {"MaxPool", 22}, {"MaxRoiPool", 22}, {"MaxUnpool", 22},
    {"Multinomial", 22}, {"NegativeLogLikelihoodLoss", 22}, {"RNN", 22}, {"RandomNormal", 22},
    {"RandomNormalLike", 22}, {"RandomUniform", 22}, {"RandomUniformLike", 22},
    {"RoiAlign", 22}, {"Round", 22}, {"Selu", 22}, {"Sin", 22}, {"Sinh", 22}, {"Softplus", 22},
    {"Softsign", 22}, {"Tan", 22}, {"ThresholdedRelu", 22},
    {"Attention", 23}, {"RMSNormalization", 23}, {"RotaryEmbedding", 23},
};

// Whether `op` has a version in (known, opset] that libonnx cannot verify.
bool ChangedAfter(const std::string& op, int known, int opset) {
  if (opset > kLastListedOpset) return true;
  for (const auto& c : kNewerVersions) {
    if (op == c.op && known < c.version && c.version <= opset) return true;
  }
  return false;
}

// Ops ONNX Runtime registers in the default domain itself (contrib schemas
// in kOnnxDomain), which exporters such as the GenAI model builder emit.
bool IsOrtDefaultDomainOp(const std::string& op) {
  return op == "SimplifiedLayerNormalization" || op == "LayerNormalization";
}

// Names a node reads, its subgraphs' reads included (outer-scope values).
void CollectReads(const onnx::NodeProto& n, std::vector<std::string>* reads) {
  for (const auto& in : n.input()) {
    if (!in.empty()) reads->push_back(in);
  }
  for (const auto& a : n.attribute()) {
    auto sub = [reads](const onnx::GraphProto& g) {
      for (const auto& sn : g.node()) CollectReads(sn, reads);
    };
    if (a.has_g()) sub(a.g());
    for (const auto& sg : a.graphs()) sub(sg);
  }
}

// Drops value_info and orders every graph's nodes topologically (stable: among ready nodes the
// original order wins), as ONNX Runtime does on load; a cycle keeps its nodes
// at the end in their order, for the checker to report.
void SortTopologically(onnx::GraphProto* g) {
  // value_info are hints: ORT replaces a hint its inference contradicts (with
  // a warning), and published models carry stale ones, so the check infers
  // without them.
  g->clear_value_info();
  for (auto& n : *g->mutable_node()) {
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_g()) SortTopologically(a.mutable_g());
      for (auto& sg : *a.mutable_graphs()) SortTopologically(&sg);
    }
  }
  const int count = g->node_size();
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < count; ++i) {
    for (const auto& o : g->node(i).output()) {
      if (!o.empty()) producer.emplace(o, i);
    }
  }
  std::vector<std::vector<int>> users(count);
  std::vector<int> pending(count, 0);
  for (int i = 0; i < count; ++i) {
    std::vector<std::string> reads;
    CollectReads(g->node(i), &reads);
    std::set<int> deps;
    for (const auto& r : reads) {
      auto it = producer.find(r);
      if (it != producer.end() && it->second != i) deps.insert(it->second);
    }
    pending[i] = static_cast<int>(deps.size());
    for (int d : deps) users[d].push_back(i);
  }
  std::set<int> ready;
  for (int i = 0; i < count; ++i) {
    if (pending[i] == 0) ready.insert(i);
  }
  std::vector<int> order;
  std::vector<bool> placed(count, false);
  while (!ready.empty()) {
    const int i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    placed[i] = true;
    for (int u : users[i]) {
      if (--pending[u] == 0) ready.insert(u);
    }
  }
  for (int i = 0; i < count; ++i) {
    if (!placed[i]) order.push_back(i);
  }
  bool identity = true;
  for (int i = 0; i < count; ++i) identity = identity && order[i] == i;
  if (identity) return;
  google::protobuf::RepeatedPtrField<onnx::NodeProto> sorted;
  for (int i : order) sorted.Add()->Swap(g->mutable_node(i));
  g->mutable_node()->Swap(&sorted);
}

// Contrib domains a node uses without an opset import: ONNX Runtime imports
// them itself (at the version it registers), so the check does too.
void CollectDomains(const onnx::GraphProto& g, std::set<std::string>* domains) {
  for (const auto& n : g.node()) {
    domains->insert(n.domain() == "ai.onnx" ? "" : n.domain());
    for (const auto& a : n.attribute()) {
      if (a.has_g()) CollectDomains(a.g(), domains);
      for (const auto& sg : a.graphs()) CollectDomains(sg, domains);
    }
  }
}

// Default-domain (and ai.onnx.ml) nodes whose opset is newer than libonnx
// knows: verified against the newest schema it knows when that schema accepts
// them, else moved to kUnverifiedDomain (structure only) and named.
void MarkUnverifiable(onnx::GraphProto* g, const std::unordered_map<std::string, int>& opsets,
                      std::set<std::string>* unverified) {
  const auto& known = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  for (auto& n : *g->mutable_node()) {
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_g()) MarkUnverifiable(a.mutable_g(), opsets, unverified);
      for (auto& sg : *a.mutable_graphs()) MarkUnverifiable(&sg, opsets, unverified);
    }
    if (!(n.domain().empty() || n.domain() == "ai.onnx")) continue;
    auto range = known.find("");
    auto imported = opsets.find(n.domain());
    if (range == known.end() || imported == opsets.end()) continue;
    const int library_max = range->second.second;
    if (imported->second <= library_max) {
      // ONNX Runtime's own ops in the default domain: no ONNX schema.
      if (IsOrtDefaultDomainOp(n.op_type()) &&
          onnx::OpSchemaRegistry::Schema(n.op_type(), imported->second, "") == nullptr) {
        unverified->insert(absl::StrCat(n.op_type(), "-", imported->second, " (ORT)"));
        n.set_domain(kUnverifiedDomain);
      }
      continue;
    }
    // A new op (no schema at all) or one with a newer version than libonnx has.
    const bool no_schema =
        onnx::OpSchemaRegistry::Schema(n.op_type(), imported->second, "") == nullptr;
    if (no_schema || ChangedAfter(n.op_type(), library_max, imported->second)) {
      unverified->insert(absl::StrCat(n.op_type(), "-", imported->second));
      n.set_domain(kUnverifiedDomain);
    }
  }
}

absl::Status CheckGraphIo(const onnx::GraphProto& g) {
  for (const auto* list : {&g.input(), &g.output()}) {
    for (const auto& v : *list) {
      if (v.name().empty()) return absl::InvalidArgumentError("ONNX checker: a graph input or output has no name");
      if (!v.has_type()) {
        return absl::InvalidArgumentError(
            absl::StrCat("ONNX checker: graph input/output '", v.name(), "' has no type"));
      }
      if (v.type().has_tensor_type() && v.type().tensor_type().elem_type() == 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "ONNX checker: graph input/output '", v.name(), "' has no element type"));
      }
    }
  }
  return absl::OkStatus();
}

// Every graph output (subgraphs included) is a value the graph or an
// enclosing scope defines; libonnx 1.12 does not check it, ORT refuses it.
absl::Status CheckOutputsDefined(const onnx::GraphProto& g, std::set<std::string> scope) {
  for (const auto& v : g.input()) scope.insert(v.name());
  for (const auto& t : g.initializer()) scope.insert(t.name());
  for (const auto& n : g.node()) {
    for (const auto& a : n.attribute()) {
      if (a.has_g()) {
        if (auto st = CheckOutputsDefined(a.g(), scope); !st.ok()) return st;
      }
      for (const auto& sg : a.graphs()) {
        if (auto st = CheckOutputsDefined(sg, scope); !st.ok()) return st;
      }
    }
    for (const auto& o : n.output()) scope.insert(o);
  }
  for (const auto& v : g.output()) {
    if (scope.count(v.name()) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("ONNX checker: graph output '", v.name(),
                                                     "' of graph '", g.name(),
                                                     "' is not produced by any node"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> CheckSkeleton(onnx::ModelProto* m) {
  if (m->ir_version() <= 0) {
    return absl::InvalidArgumentError("ONNX checker: the model has no ir_version");
  }
  std::unordered_map<std::string, int> opsets;
  for (const auto& o : m->opset_import()) {
    // A domain imported twice (published models do it) counts at its highest.
    int& v = opsets[o.domain()];
    v = std::max(v, static_cast<int>(o.version()));
  }
  if (opsets.empty()) return absl::InvalidArgumentError("ONNX checker: the model imports no opset");
  std::set<std::string> domains;
  CollectDomains(m->graph(), &domains);
  for (const auto& d : domains) {
    if (!d.empty() && d != "ai.onnx.ml" && opsets.count(d) == 0) opsets[d] = 1;
  }
  m->clear_opset_import();
  for (const auto& [domain, version] : opsets) {
    auto* o = m->add_opset_import();
    o->set_domain(domain);
    o->set_version(version);
  }
  SortTopologically(m->mutable_graph());
  absl::Status io = CheckGraphIo(m->graph());
  if (!io.ok()) return io;
  io = CheckOutputsDefined(m->graph(), {});
  if (!io.ok()) return io;

  onnx::checker::CheckerContext ctx;
  // IR < 4 wanted every initializer listed as a graph input; ORT does not.
  const int64_t ir = std::clamp<int64_t>(m->ir_version(), 4, onnx::IR_VERSION);
  ctx.set_ir_version(static_cast<int>(ir));
  ctx.set_opset_imports(opsets);
  // Inputs/outputs were checked above; the library's main-graph rule that
  // they carry a shape predates ONNX 1.13 and ORT does not need it.
  ctx.set_is_main_graph(false);
  std::set<std::string> unverified;
  std::vector<std::string> notes;
  try {
    MarkUnverifiable(m->mutable_graph(), opsets, &unverified);
    if (!unverified.empty()) {
      opsets[kUnverifiedDomain] = 1;
      ctx.set_opset_imports(opsets);
      auto* o = m->add_opset_import();
      o->set_domain(kUnverifiedDomain);
      o->set_version(1);
      notes.push_back(absl::StrCat(
          "ONNX checker (libonnx: IR ", onnx::IR_VERSION, ", opset ",
          onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map().at("").second,
          "): no schema for ", absl::StrJoin(unverified, ", "),
          " (ORT's own op, or newer than the library); checked for structure only"));
    }
    onnx::checker::LexicalScopeContext lex;
    onnx::checker::check_graph(m->graph(), ctx, lex);
    if (m->functions_size() > 0) onnx::checker::check_model_local_functions(*m, ctx, lex);
    m->set_ir_version(ir);
    onnx::ShapeInferenceOptions options{/*check_type=*/true, /*error_mode=*/1,
                                        /*enable_data_propagation=*/false};
    onnx::shape_inference::InferShapes(*m, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("ONNX checker: ", e.what()));
  }
  return notes;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> CheckOnnxOutput(onnx::ModelProto* model) {
  std::vector<HeldTensor> held;
  StripGraph(model->mutable_graph(), &held);
  onnx::ModelProto skeleton = *model;  // graph only: the data is in `held`
  for (auto it = held.rbegin(); it != held.rend(); ++it) it->tensor->Swap(&it->data);
  return CheckSkeleton(&skeleton);
}

absl::StatusOr<std::vector<std::string>> CheckOnnxFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&in)) {
    return absl::DataLossError(absl::StrCat(path, ": not an ONNX protobuf"));
  }
  return CheckOnnxOutput(&model);
}

}  // namespace quantd::core
