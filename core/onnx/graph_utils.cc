#include "quantd/core/onnx/graph_utils.h"

#include "absl/strings/str_cat.h"

namespace quantd::core {

const onnx::AttributeProto* FindAttr(const onnx::NodeProto& node, absl::string_view name) {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

int64_t IntAttr(const onnx::NodeProto& node, absl::string_view name, int64_t dflt) {
  const auto* a = FindAttr(node, name);
  return a != nullptr ? a->i() : dflt;
}

float FloatAttr(const onnx::NodeProto& node, absl::string_view name, float dflt) {
  const auto* a = FindAttr(node, name);
  return a != nullptr ? a->f() : dflt;
}

void SetIntAttr(onnx::NodeProto* node, const std::string& name, int64_t value) {
  for (auto& a : *node->mutable_attribute()) {
    if (a.name() == name) {
      a.set_i(value);
      return;
    }
  }
  auto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

std::vector<onnx::GraphProto*> Subgraphs(onnx::NodeProto* node) {
  std::vector<onnx::GraphProto*> out;
  for (auto& a : *node->mutable_attribute()) {
    if (a.has_g()) out.push_back(a.mutable_g());
    for (auto& g : *a.mutable_graphs()) out.push_back(&g);
  }
  return out;
}

std::vector<const onnx::GraphProto*> Subgraphs(const onnx::NodeProto& node) {
  std::vector<const onnx::GraphProto*> out;
  for (const auto& a : node.attribute()) {
    if (a.has_g()) out.push_back(&a.g());
    for (const auto& g : a.graphs()) out.push_back(&g);
  }
  return out;
}

int32_t ElemType(const onnx::TypeProto& type) {
  return type.has_tensor_type() ? type.tensor_type().elem_type() : 0;
}

void SetInt64Tensor(onnx::TensorProto* t, absl::Span<const int64_t> values, bool scalar) {
  t->set_data_type(onnx::TensorProto::INT64);
  if (!scalar) t->add_dims(static_cast<int64_t>(values.size()));
  t->set_raw_data(
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t)));
}

int64_t DefaultOpsetVersion(const onnx::ModelProto& model) {
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  }
  return 0;
}

NameTable::NameTable(const onnx::GraphProto& graph) { Collect(graph); }

void NameTable::Collect(const onnx::GraphProto& g) {
  for (const auto& v : g.input()) names_.insert(v.name());
  for (const auto& v : g.output()) names_.insert(v.name());
  for (const auto& v : g.initializer()) names_.insert(v.name());
  for (const auto& n : g.node()) {
    names_.insert(n.name());
    for (const auto& s : n.input()) names_.insert(s);
    for (const auto& s : n.output()) names_.insert(s);
    for (const auto* sub : Subgraphs(n)) Collect(*sub);
  }
}

std::string NameTable::Unique(const std::string& base) {
  std::string name = base;
  for (int i = 1; names_.count(name) > 0; ++i) name = absl::StrCat(base, "_", i);
  names_.insert(name);
  return name;
}

}  // namespace quantd::core
