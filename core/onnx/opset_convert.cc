#include "opset_convert.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "onnx/common/version.h"
#include "onnx/defs/schema.h"
#include "onnx/version_converter/convert.h"
#include "opset.h"
#include "quantd/core/onnx/onnx_check.h"

namespace quantd::core {
namespace {

// Tensors up to this size keep their bytes in the skeleton: adapters may read
// small constants, and copying them costs nothing.
constexpr size_t kKeepInlineBytes = 4096;
// Name prefixes that exist only inside the skeleton.
constexpr char kHeldTensorPrefix[] = "quantd.opset.tensor.";
constexpr char kHeldNodePrefix[] = "quantd.opset.node.";
constexpr char kRenamedValuePrefix[] = "quantd.opset.value.";
// A default-domain op with one version only (opset 1): the skeleton's stand-in
// for nodes of other domains, which the converter cannot look up.
constexpr char kPlaceholderOp[] = "Not";

// libonnx's default converter, opened up to answer "is there an adapter".
class AdapterTable final : public onnx::version_conversion::DefaultVersionConverter {
 public:
  bool Has(const std::string& op, int64_t from, int64_t to) const {
    auto by_op = adapters.find(op);
    if (by_op == adapters.end()) return false;
    auto by_from = by_op->second.find(onnx::OpSetID(from).toString());
    if (by_from == by_op->second.end()) return false;
    return by_from->second.count(onnx::OpSetID(to).toString()) > 0;
  }
};

// Adapters that replace an op by another: the new op goes on from there.
struct ReplacedOp {
  const char* op;
  int version;
  const char* by;
};
constexpr ReplacedOp kReplacedOps[] = {{"Upsample", 10, "Resize"}, {"Scatter", 11, "ScatterElements"}};

// Whether `op` has a default-domain schema introduced exactly at `version`.
bool ChangesAt(const std::string& op, int64_t version) {
  const onnx::OpSchema* s =
      onnx::OpSchemaRegistry::Schema(op, static_cast<int>(version), "");
  return s != nullptr && s->since_version() == version;
}

void CollectDefaultOps(const onnx::GraphProto& g, std::set<std::string>* ops) {
  for (const auto& n : g.node()) {
    if (IsDefaultDomain(n.domain())) ops->insert(n.op_type());
    for (const auto& a : n.attribute()) {
      if (a.has_g()) CollectDefaultOps(a.g(), ops);
      for (const auto& sg : a.graphs()) CollectDefaultOps(sg, ops);
    }
  }
}

// Calls `f(graph)` on `g` and every subgraph below it.
template <typename F>
void ForEachGraph(onnx::GraphProto* g, const F& f) {
  f(g);
  for (auto& n : *g->mutable_node()) {
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_g()) ForEachGraph(a.mutable_g(), f);
      for (auto& sg : *a.mutable_graphs()) ForEachGraph(&sg, f);
    }
  }
}

// Calls `f(name)` on every value name `g` mentions (not its subgraphs).
template <typename F>
void ForEachName(onnx::GraphProto* g, const F& f) {
  for (auto& n : *g->mutable_node()) {
    for (auto& s : *n.mutable_input()) f(&s);
    for (auto& s : *n.mutable_output()) f(&s);
  }
  for (auto& v : *g->mutable_input()) f(v.mutable_name());
  for (auto& v : *g->mutable_output()) f(v.mutable_name());
  for (auto& v : *g->mutable_value_info()) f(v.mutable_name());
  for (auto& t : *g->mutable_initializer()) f(t.mutable_name());
}

bool IsAllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
}

// A tensor of the real model: it goes back into the converted graph as it
// was. Large ones are reduced to name, type and dims in the skeleton.
struct HeldTensor {
  onnx::TensorProto* tensor;  // in the real model
  bool initializer;
  bool strip;       // larger than kKeepInlineBytes or external
  std::string key;  // initializer name, or the marker name of an attribute tensor
  bool reattached = false;
};

void HoldTensor(onnx::TensorProto* t, bool initializer, std::vector<HeldTensor>* held) {
  const bool external = t->data_location() == onnx::TensorProto::EXTERNAL;
  const bool strip = external || t->ByteSizeLong() > kKeepInlineBytes;
  std::string key = initializer ? t->name() : absl::StrCat(kHeldTensorPrefix, held->size());
  held->push_back({t, initializer, strip, std::move(key)});
}

// The skeleton: `model` with large tensors reduced to name, type and dims
// and attribute tensors named by their key. `model` is unchanged on return.
// Errors: FailedPrecondition when two graphs hold initializers of one name
// (the converted graph could not tell them apart) or a graph has sparse
// initializers.
absl::StatusOr<onnx::ModelProto> Skeleton(onnx::ModelProto* model, std::vector<HeldTensor>* held) {
  ForEachGraph(model->mutable_graph(), [&](onnx::GraphProto* g) {
    for (auto& t : *g->mutable_initializer()) HoldTensor(&t, true, held);
    for (auto& n : *g->mutable_node()) {
      for (auto& a : *n.mutable_attribute()) {
        if (a.has_t()) HoldTensor(a.mutable_t(), false, held);
        for (auto& t : *a.mutable_tensors()) HoldTensor(&t, false, held);
      }
    }
  });
  bool sparse = false;
  ForEachGraph(model->mutable_graph(),
               [&](onnx::GraphProto* g) { sparse |= g->sparse_initializer_size() > 0; });
  if (sparse) {
    // libonnx's in-memory graph has no sparse initializers: they would be lost.
    return absl::FailedPreconditionError(
        "opset conversion: the model has sparse initializers, which the converter drops");
  }
  std::set<std::string> keys;
  for (const auto& h : *held) {
    if (!keys.insert(h.key).second) {
      return absl::FailedPreconditionError(absl::StrCat(
          "opset conversion: more than one graph has an initializer named '", h.key, "'"));
    }
  }
  std::vector<onnx::TensorProto> data(held->size());
  std::vector<std::string> names(held->size());
  for (size_t i = 0; i < held->size(); ++i) {
    onnx::TensorProto* t = (*held)[i].tensor;
    if ((*held)[i].strip) {
      data[i].Swap(t);  // O(1): the bytes move, they are not copied
      t->set_data_type(data[i].data_type());
      *t->mutable_dims() = data[i].dims();
    } else {
      names[i] = t->name();
    }
    t->set_name((*held)[i].key);
  }
  onnx::ModelProto skeleton = *model;
  for (size_t i = 0; i < held->size(); ++i) {
    onnx::TensorProto* t = (*held)[i].tensor;
    if ((*held)[i].strip) {
      t->Swap(&data[i]);
    } else {
      t->set_name(names[i]);
    }
  }
  return skeleton;
}

// Moves typed-field contents of a tensor the converter made into raw_data,
// as OnnxModel keeps every tensor (Read() takes raw or external data only).
template <typename T, typename Field>
void PackTyped(Field* field, onnx::TensorProto* t) {
  std::string raw(field->size() * sizeof(T), '\0');
  for (int i = 0; i < field->size(); ++i) {
    const T v = static_cast<T>(field->Get(i));
    std::memcpy(raw.data() + i * sizeof(T), &v, sizeof(T));
  }
  field->Clear();
  t->set_raw_data(std::move(raw));
}
absl::Status PackConverterTensor(onnx::TensorProto* t) {
  if (t->has_raw_data()) return absl::OkStatus();
  switch (t->data_type()) {
    case onnx::TensorProto::FLOAT:
      PackTyped<float>(t->mutable_float_data(), t);
      return absl::OkStatus();
    case onnx::TensorProto::DOUBLE:
      PackTyped<double>(t->mutable_double_data(), t);
      return absl::OkStatus();
    case onnx::TensorProto::INT64:
      PackTyped<int64_t>(t->mutable_int64_data(), t);
      return absl::OkStatus();
    case onnx::TensorProto::INT32:
      PackTyped<int32_t>(t->mutable_int32_data(), t);
      return absl::OkStatus();
    default:
      return absl::InternalError(absl::StrCat("opset conversion: the converter made a tensor of type ",
                                              t->data_type(), " in typed fields"));
  }
}

// Stand-ins and renames made in the skeleton, undone on the converted graph.
struct SkeletonEdits {
  std::map<std::string, onnx::NodeProto> nodes;  // marker name -> original op, domain, name
  std::map<std::string, std::string> values;     // skeleton name -> original name
  std::set<std::string> names;                   // every value name of the skeleton
};

// The converter names the values it creates by number ("9", "10"), which may
// be names the model already uses: the skeleton renames those. Nodes of other
// domains become placeholders, which the converter leaves alone.
void EditSkeleton(onnx::ModelProto* skeleton, SkeletonEdits* edits) {
  ForEachGraph(skeleton->mutable_graph(), [&](onnx::GraphProto* g) {
    ForEachName(g, [&](std::string* s) { edits->names.insert(*s); });
  });
  std::map<std::string, std::string> renamed;  // original -> skeleton
  for (const auto& s : edits->names) {
    if (!IsAllDigits(s)) continue;
    std::string r = absl::StrCat(kRenamedValuePrefix, s);
    while (edits->names.count(r) > 0) r += "_";
    renamed[s] = r;
    edits->values[r] = s;
  }
  for (const auto& [skel, orig] : edits->values) edits->names.insert(skel);
  ForEachGraph(skeleton->mutable_graph(), [&](onnx::GraphProto* g) {
    ForEachName(g, [&](std::string* s) {
      auto it = renamed.find(*s);
      if (it != renamed.end()) *s = it->second;
    });
    for (auto& n : *g->mutable_node()) {
      if (IsDefaultDomain(n.domain())) continue;
      const std::string marker = absl::StrCat(kHeldNodePrefix, edits->nodes.size());
      onnx::NodeProto& orig = edits->nodes[marker];
      orig.set_op_type(n.op_type());
      orig.set_domain(n.domain());
      orig.set_name(n.name());
      n.set_op_type(kPlaceholderOp);
      n.set_domain("");
      n.set_name(marker);
    }
  });
}

// Upsample-9 and Resize-10 sample at x_out / scale (asymmetric) and round
// nearest down; the 10->11 adapter leaves Resize-11's defaults (half_pixel,
// round_prefer_floor), which move the samples. Models below opset 11 hold no
// Resize-11, so every Resize without the attribute came from the adapter.
void KeepOldResizeSampling(onnx::NodeProto* n) {
  if (n->op_type() != "Resize" || !IsDefaultDomain(n->domain())) return;
  std::string mode = "nearest";
  for (const auto& a : n->attribute()) {
    if (a.name() == "coordinate_transformation_mode") return;
    if (a.name() == "mode") mode = a.s();
  }
  auto* ct = n->add_attribute();
  ct->set_name("coordinate_transformation_mode");
  ct->set_type(onnx::AttributeProto::STRING);
  ct->set_s("asymmetric");
  if (mode == "nearest") {
    auto* nm = n->add_attribute();
    nm->set_name("nearest_mode");
    nm->set_type(onnx::AttributeProto::STRING);
    nm->set_s("floor");
  }
}

// Undoes EditSkeleton on `converted`, names the values the converter made,
// and moves the held tensors of the real model into it.
absl::Status RestoreConverted(onnx::ModelProto* converted, const SkeletonEdits& edits,
                              bool resize_from_10, std::vector<HeldTensor>* held) {
  std::map<std::string, std::string> fresh;  // converter's numeric name -> ours
  std::set<std::string> taken = edits.names;
  std::map<std::string, HeldTensor*> by_key;
  for (auto& h : *held) by_key[h.key] = &h;
  absl::Status st;
  auto reattach = [&](onnx::TensorProto* t) {
    auto it = by_key.find(t->name());
    if (it == by_key.end()) {
      if (st.ok()) st = PackConverterTensor(t);  // a tensor the converter made
      return;
    }
    HeldTensor* h = it->second;
    if (h->reattached) {
      st = absl::InternalError(absl::StrCat("opset conversion: tensor '", t->name(),
                                            "' appears twice in the converted graph"));
      return;
    }
    t->Swap(h->tensor);
    h->reattached = true;
  };
  ForEachGraph(converted->mutable_graph(), [&](onnx::GraphProto* g) {
    ForEachName(g, [&](std::string* s) {
      if (IsAllDigits(*s)) {
        auto [it, inserted] = fresh.try_emplace(*s);
        if (inserted) {
          std::string r = absl::StrCat("opset_convert_", *s);
          while (taken.count(r) > 0) r += "_";
          taken.insert(r);
          it->second = r;
        }
        *s = it->second;
      } else if (auto it = edits.values.find(*s); it != edits.values.end()) {
        *s = it->second;
      }
    });
    for (auto& n : *g->mutable_node()) {
      if (auto it = edits.nodes.find(n.name()); it != edits.nodes.end()) {
        n.set_op_type(it->second.op_type());
        n.set_domain(it->second.domain());
        n.set_name(it->second.name());
      }
      if (resize_from_10) KeepOldResizeSampling(&n);
      for (auto& a : *n.mutable_attribute()) {
        if (a.has_t()) reattach(a.mutable_t());
        for (auto& t : *a.mutable_tensors()) reattach(&t);
      }
    }
    for (auto& t : *g->mutable_initializer()) reattach(&t);
  });
  if (!st.ok()) return st;
  return absl::OkStatus();
}

}  // namespace

int64_t MaxConvertibleOpset() {
  return onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map().at("").second;
}

std::string ConverterName() {
  return absl::StrCat("the ONNX version converter (libonnx ", onnx::LAST_RELEASE_VERSION, ")");
}

absl::Status CheckConvertible(const onnx::ModelProto& model, int64_t from, int64_t to) {
  std::set<std::string> ops;
  CollectDefaultOps(model.graph(), &ops);
  const AdapterTable table;
  std::vector<std::string> missing;
  for (const auto& op : ops) {
    if (onnx::OpSchemaRegistry::Schema(op, static_cast<int>(from), "") == nullptr) {
      missing.push_back(absl::StrCat(op, " (no schema at opset ", from, ")"));
      continue;
    }
    std::string cur = op;  // the op the node is at version v
    for (int64_t v = from; v < to; ++v) {
      if (!ChangesAt(cur, v + 1)) continue;
      if (!table.Has(cur, v, v + 1)) {
        missing.push_back(absl::StrCat(cur, cur == op ? "" : absl::StrCat(" (from ", op, ")"),
                                       " (opset ", v, " to ", v + 1, ")"));
        break;
      }
      for (const auto& r : kReplacedOps) {
        if (cur == r.op && v + 1 == r.version) cur = r.by;
      }
    }
  }
  if (missing.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(ConverterName(), " cannot convert the model from opset ", from, " to ", to,
                   ": it has no adapter for ", absl::StrJoin(missing, ", ")));
}

absl::Status ConvertOpset(onnx::ModelProto* model, int64_t to) {
  const int64_t from = DefaultOpset(*model);
  if (from >= to) return absl::OkStatus();
  if (to > MaxConvertibleOpset()) {
    return absl::FailedPreconditionError(
        absl::StrCat(ConverterName(), " converts up to opset ", MaxConvertibleOpset(),
                     ", not to ", to));
  }
  absl::Status st = CheckConvertible(*model, from, to);
  if (!st.ok()) return st;

  std::vector<HeldTensor> held;
  absl::StatusOr<onnx::ModelProto> skel = Skeleton(model, &held);
  if (!skel.ok()) return skel.status();
  onnx::ModelProto skeleton = *std::move(skel);
  // The converter reads the initial version from the first default-domain
  // import; make it the only one, with the version DefaultOpset() saw.
  skeleton.clear_opset_import();
  auto* o = skeleton.add_opset_import();
  o->set_domain("");
  o->set_version(from);
  skeleton.clear_functions();
  SkeletonEdits edits;
  EditSkeleton(&skeleton, &edits);
  onnx::ModelProto converted;
  try {
    converted = onnx::version_conversion::ConvertVersion(skeleton, static_cast<int>(to));
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(absl::StrCat(ConverterName(),
                                                      " cannot convert the model from opset ",
                                                      from, " to ", to, ": ", e.what()));
  }
  skeleton.Clear();
  // The real model's tensors move into `converted` from here on: a failure
  // leaves `model` without them, so check before moving anything.
  st = RestoreConverted(&converted, edits, from < 11 && to >= 11, &held);
  if (!st.ok()) return st;
  model->mutable_graph()->Swap(converted.mutable_graph());
  SetDefaultOpset(model, to);
  absl::StatusOr<std::vector<std::string>> check = CheckOnnxOutput(model);
  if (!check.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the model converted from opset ", from, " to ", to, " by ", ConverterName(),
        " fails the check: ", check.status().message()));
  }
  return absl::OkStatus();
}

}  // namespace quantd::core
