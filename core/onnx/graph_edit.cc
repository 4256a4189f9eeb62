#include "graph_edit.h"

#include <algorithm>
#include <functional>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "quantd/core/onnx/onnx_types.h"

namespace quantd::core {
namespace {

void CountUses(const onnx::GraphProto& g, std::unordered_map<std::string, int>* uses) {
  for (const auto& v : g.output()) (*uses)[v.name()]++;
  for (const auto& n : g.node()) {
    for (const auto& s : n.input()) {
      if (!s.empty()) (*uses)[s]++;
    }
    for (const auto* sub : Subgraphs(n)) CountUses(*sub, uses);
  }
}

}  // namespace

bool operator==(const CacheKey& a, const CacheKey& b) {
  return a.graph == b.graph && a.product == b.product && a.value == b.value &&
         a.transposed == b.transposed;
}

bool operator<(const CacheKey& a, const CacheKey& b) {
  if (a.graph != b.graph) return std::less<const onnx::GraphProto*>()(a.graph, b.graph);
  return std::tie(a.product, a.value, a.transposed) < std::tie(b.product, b.value, b.transposed);
}

GraphEdit::GraphEdit(OnnxModel* model) : model_(model), names_(model->proto().graph()) {}

onnx::NodeProto GraphEdit::MakeNode(const std::string& op, const std::string& name,
                                    std::vector<std::string> inputs,
                                    std::vector<std::string> outputs) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(UniqueName(name));
  for (auto& s : inputs) n.add_input(s);
  for (auto& s : outputs) n.add_output(s);
  return n;
}

void GraphEdit::InsertBefore(const onnx::NodeProto* anchor, onnx::NodeProto node) {
  before_[anchor].push_back(std::move(node));
}

void GraphEdit::Replace(const onnx::NodeProto* anchor, std::vector<onnx::NodeProto> nodes) {
  replace_[anchor] = std::move(nodes);
}

void GraphEdit::RebuildNodes(onnx::GraphProto* g) {
  std::vector<onnx::NodeProto*> nodes;
  while (g->node_size() > 0) nodes.push_back(g->mutable_node()->ReleaseLast());
  std::reverse(nodes.begin(), nodes.end());
  for (onnx::NodeProto* n : nodes) {
    if (auto it = before_.find(n); it != before_.end()) {
      for (auto& b : it->second) *g->add_node() = std::move(b);
      before_.erase(it);
    }
    if (auto it = replace_.find(n); it != replace_.end()) {
      for (auto& r : it->second) *g->add_node() = std::move(r);
      replace_.erase(it);
      delete n;
      continue;
    }
    g->mutable_node()->AddAllocated(n);
  }
}

onnx::TensorProto* GraphEdit::AddDeferredInitializer(onnx::GraphProto* g, const std::string& name,
                                                     int32_t type, const std::vector<int64_t>& dims,
                                                     const std::shared_ptr<DeferredWeight>& weight,
                                                     WeightOutput slot) {
  onnx::TensorProto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  uint64_t count = 1;
  for (int64_t d : dims) {
    t->add_dims(d);
    count *= static_cast<uint64_t>(d);
  }
  auto bytes = ByteSize(type, count);
  const uint64_t b = bytes.ok() ? *bytes : 0;
  weight->report->tensors[weight->report_index].bytes_after += b;
  weight->report->bytes_after += b;
  model_->Defer(t, ProducerFor(weight, slot));
  return t;
}

void GraphEdit::AddSource(const ConstWeight& w, std::shared_ptr<DeferredWeight> weight) {
  auto& use = sources_[w.tensor];
  use.weight = w;
  use.weight.transpose = nullptr;
  use.weights.push_back(std::move(weight));
  if (w.transpose != nullptr) transposes_.insert(w.transpose);
}

absl::Status GraphEdit::FinishSources() {
  std::unordered_map<std::string, int> uses;
  CountUses(model_->proto().graph(), &uses);
  // Drop folded Transposes nobody reads any more.
  std::function<void(onnx::GraphProto*)> drop = [&](onnx::GraphProto* g) {
    for (int i = 0; i < g->node_size();) {
      onnx::NodeProto* n = g->mutable_node(i);
      for (onnx::GraphProto* sub : Subgraphs(n)) drop(sub);
      if (transposes_.count(n) > 0 && uses[n->output(0)] == 0) {
        uses[n->input(0)]--;
        transposes_.erase(n);
        g->mutable_node()->DeleteSubrange(i, 1);
        continue;
      }
      ++i;
    }
  };
  drop(model_->proto().mutable_graph());
  std::set<const onnx::NodeProto*> dead_constants;
  std::set<std::string> dead_initializers;
  for (auto& [tensor, use] : sources_) {
    const std::string value =
        use.weight.constant != nullptr ? use.weight.constant->output(0) : tensor->name();
    std::shared_ptr<onnx::TensorProto> src;
    if (uses[value] == 0) {
      src = std::make_shared<onnx::TensorProto>(model_->TakeData(tensor));
      if (use.weight.constant != nullptr) {
        dead_constants.insert(use.weight.constant);
      } else {
        dead_initializers.insert(tensor->name());
      }
    } else {
      src = std::make_shared<onnx::TensorProto>(*tensor);
    }
    for (auto& weight : use.weights) weight->src = src;
  }
  std::function<void(onnx::GraphProto*)> sweep = [&](onnx::GraphProto* g) {
    for (int i = 0; i < g->initializer_size();) {
      if (dead_initializers.count(g->initializer(i).name()) > 0 &&
          uses[g->initializer(i).name()] == 0) {
        g->mutable_initializer()->DeleteSubrange(i, 1);
        continue;
      }
      ++i;
    }
    for (int i = 0; i < g->node_size();) {
      onnx::NodeProto* n = g->mutable_node(i);
      if (dead_constants.count(n) > 0) {
        g->mutable_node()->DeleteSubrange(i, 1);
        continue;
      }
      for (onnx::GraphProto* sub : Subgraphs(n)) sweep(sub);
      ++i;
    }
  };
  sweep(model_->proto().mutable_graph());
  return absl::OkStatus();
}

}  // namespace quantd::core
