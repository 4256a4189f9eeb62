#include "weight_matcher.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "opset.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/onnx/graph_utils.h"
#include "quantd/core/onnx/onnx_types.h"

namespace quantd::core {

bool ResolveWeight(onnx::GraphProto* g, const std::string& value, ConstWeight* out) {
  for (const auto& in : g->input()) {
    if (in.name() == value) return false;  // an initializer a caller may override
  }
  for (auto& t : *g->mutable_initializer()) {
    if (t.name() == value) {
      out->tensor = &t;
      out->value = value;
      return true;
    }
  }
  for (auto& n : *g->mutable_node()) {
    if (n.output_size() != 1 || n.output(0) != value) continue;
    if (n.op_type() == "Constant" && IsDefaultDomain(n.domain())) {
      for (auto& a : *n.mutable_attribute()) {
        if (a.name() == "value" && a.has_t()) {
          out->tensor = a.mutable_t();
          out->constant = &n;
          out->value = value;
          return true;
        }
      }
      return false;
    }
    if (n.op_type() == "Transpose" && IsDefaultDomain(n.domain()) && n.input_size() == 1) {
      const auto* perm = FindAttr(n, "perm");
      if (perm != nullptr &&
          !(perm->ints_size() == 2 && perm->ints(0) == 1 && perm->ints(1) == 0)) {
        return false;
      }
      ConstWeight inner;
      if (!ResolveWeight(g, n.input(0), &inner) || inner.transpose != nullptr) return false;
      if (inner.tensor->dims_size() != 2) return false;
      *out = inner;
      out->transpose = &n;
      out->value = value;
      return true;
    }
    return false;
  }
  return false;
}

const onnx::NodeProto* FindLmHead(const onnx::GraphProto& g) {
  if (g.output_size() == 0) return nullptr;
  std::string target;
  for (const auto& o : g.output()) {
    if (absl::StrContains(absl::AsciiStrToLower(o.name()), "logits")) {
      target = o.name();
      break;
    }
  }
  if (target.empty()) return nullptr;  // not a language model: no LM head
  std::unordered_map<std::string, const onnx::NodeProto*> producer;
  for (const auto& n : g.node()) {
    for (const auto& o : n.output()) producer[o] = &n;
  }
  std::set<std::string> inits;
  for (const auto& t : g.initializer()) inits.insert(t.name());
  std::vector<std::string> frontier = {target};
  std::set<std::string> seen;
  for (int depth = 0; depth < 8 && !frontier.empty(); ++depth) {
    std::vector<std::string> next;
    for (const auto& v : frontier) {
      auto it = producer.find(v);
      if (it == producer.end() || !seen.insert(v).second) continue;
      const onnx::NodeProto* n = it->second;
      if ((n->op_type() == "MatMul" || n->op_type() == "Gemm") && IsDefaultDomain(n->domain()) &&
          n->input_size() >= 2) {
        const std::string& b = n->input(1);
        auto p = producer.find(b);
        bool constant =
            inits.count(b) > 0 || (p != producer.end() && (p->second->op_type() == "Constant" ||
                                                           p->second->op_type() == "Transpose"));
        if (constant) return n;
      }
      for (const auto& in : n->input()) {
        if (!in.empty() && inits.count(in) == 0) next.push_back(in);
      }
    }
    frontier = std::move(next);
  }
  return nullptr;
}


const onnx::NodeProto* FindLmHeadByStructure(const onnx::GraphProto& g) {
  std::unordered_map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : g.initializer()) inits[t.name()] = &t;
  std::unordered_map<std::string, const onnx::NodeProto*> producer;
  for (const auto& n : g.node()) {
    for (const auto& o : n.output()) producer[o] = &n;
  }
  // A constant 2-D tensor behind `value`: an initializer or a Constant.
  auto constant = [&](const std::string& value) -> const onnx::TensorProto* {
    auto i = inits.find(value);
    if (i != inits.end()) return i->second;
    auto p = producer.find(value);
    if (p != producer.end() && p->second->op_type() == "Constant") {
      for (const auto& a : p->second->attribute()) {
        if (a.name() == "value" && a.has_t()) return &a.t();
      }
    }
    return nullptr;
  };
  std::set<int64_t> vocab;
  for (const auto& n : g.node()) {
    if (n.op_type() != "Gather" || !IsDefaultDomain(n.domain()) || n.input_size() < 2) continue;
    if (IntAttr(n, "axis", 0) != 0) continue;
    const onnx::TensorProto* t = constant(n.input(0));
    if (t != nullptr && t->dims_size() == 2) vocab.insert(t->dims(0));
  }
  if (vocab.empty()) return nullptr;
  static const std::set<std::string> kPassThrough = {"Reshape", "Cast",  "Squeeze", "Unsqueeze",
                                                     "Identity", "Tanh", "Mul",     "Div",
                                                     "Add"};
  for (const auto& out : g.output()) {
    std::vector<std::string> frontier = {out.name()};
    std::set<std::string> seen;
    for (int depth = 0; depth <= 8 && !frontier.empty(); ++depth) {
      std::vector<std::string> next;
      for (const auto& v : frontier) {
        auto it = producer.find(v);
        if (it == producer.end() || !seen.insert(v).second) continue;
        const onnx::NodeProto* n = it->second;
        if (!IsDefaultDomain(n->domain())) continue;
        if ((n->op_type() == "MatMul" || n->op_type() == "Gemm") && n->input_size() >= 2) {
          std::string b = n->input(1);
          bool transposed = n->op_type() == "Gemm" && IntAttr(*n, "transB", 0) != 0;
          auto p = producer.find(b);
          if (p != producer.end() && p->second->op_type() == "Transpose" &&
              p->second->input_size() > 0) {
            b = p->second->input(0);
            transposed = !transposed;
          }
          const onnx::TensorProto* w = constant(b);
          if (w != nullptr && w->dims_size() == 2 &&
              vocab.count(w->dims(transposed ? 0 : 1)) > 0) {
            return n;
          }
          continue;  // another MatMul: the head is not behind it
        }
        if (kPassThrough.count(n->op_type()) == 0) continue;
        for (const auto& in : n->input()) {
          if (!in.empty() && inits.count(in) == 0) next.push_back(in);
        }
      }
      frontier = std::move(next);
    }
  }
  return nullptr;
}

absl::StatusOr<const onnx::NodeProto*> LocateLmHead(const onnx::GraphProto& g,
                                                   const std::string& lm_head_node) {
  if (!lm_head_node.empty()) {
    for (const auto& n : g.node()) {
      if (n.name() == lm_head_node && IsDefaultDomain(n.domain()) &&
          (n.op_type() == "MatMul" || n.op_type() == "Gemm")) {
        return &n;
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "lm_head_node '", lm_head_node, "' names no MatMul or Gemm node of the main graph"));
  }
  if (const onnx::NodeProto* n = FindLmHead(g)) return n;
  return FindLmHeadByStructure(g);
}

std::string SkipReason(const onnx::NodeProto& n, const ConstWeight& w,
                       uint64_t min_tensor_elements) {
  const int32_t type = w.tensor->data_type();
  if (type != kOnnxFloat && type != kOnnxFloat16) {
    return absl::StrCat("weight type ", OnnxTypeName(type), " (only FLOAT/FLOAT16 are quantized)");
  }
  const bool conv = n.op_type() == "Conv";
  const int rank = w.tensor->dims_size();
  if (!conv && rank != 2) return "weight is not 2-D";
  if (conv && rank < 3) return "Conv weight rank < 3";
  for (int64_t d : w.tensor->dims()) {
    if (d <= 0) return "empty weight";
  }
  auto count = ElementCount({w.tensor->dims().data(), static_cast<size_t>(rank)});
  if (!count.ok()) return "bad weight shape";
  if (*count < min_tensor_elements) {
    return absl::StrCat("fewer than --min-tensor-elements ", min_tensor_elements, " elements");
  }
  if (n.op_type() == "Gemm") {
    if (IntAttr(n, "transA", 0) != 0) return "Gemm with transA=1";
    if (FloatAttr(n, "alpha", 1.0f) != 1.0f) return "Gemm with alpha != 1";
    if (n.input_size() > 2 && !n.input(2).empty() && FloatAttr(n, "beta", 1.0f) != 1.0f) {
      return "Gemm with beta != 1";
    }
  }
  return "";
}

std::string EmbeddingSkipReason(const onnx::NodeProto& n, const ConstWeight& w,
                                uint64_t min_tensor_elements) {
  if (w.transpose != nullptr) return "embedding data is a Transpose";
  const int64_t axis = IntAttr(n, "axis", 0);
  if (axis != 0 && axis != -2) return "Gather with axis != 0";
  return SkipReason(n, w, min_tensor_elements);
}

bool HasEmbedding(onnx::GraphProto* g, uint64_t min_tensor_elements) {
  for (auto& n : *g->mutable_node()) {
    for (onnx::GraphProto* sub : Subgraphs(&n)) {
      if (HasEmbedding(sub, min_tensor_elements)) return true;
    }
    if (n.op_type() != "Gather" || !IsDefaultDomain(n.domain()) || n.input_size() < 2) continue;
    ConstWeight w;
    if (ResolveWeight(g, n.input(0), &w) &&
        EmbeddingSkipReason(n, w, min_tensor_elements).empty()) {
      return true;
    }
  }
  return false;
}

std::string NodeLabel(const onnx::NodeProto& n) {
  return n.name().empty() ? n.output(0) : n.name();
}

absl::StatusOr<NodeExclusion> NodeExclusion::Create(const Recipe& recipe) {
  NodeExclusion out;
  out.names_ = recipe.exclude_nodes;
  QUANTD_ASSIGN_OR_RETURN(out.patterns_,
                          NamePatterns::Compile(recipe.exclude_regex, "exclude_regex"));
  return out;
}

bool NodeExclusion::Excludes(const std::string& node_name) const {
  if (std::find(names_.begin(), names_.end(), node_name) != names_.end()) return true;
  return patterns_.FullMatchAny(node_name);
}

}  // namespace quantd::core
