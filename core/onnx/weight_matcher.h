// Which weights the quantize pass may touch: constant weights behind a node
// input (initializer, Constant node, or a folded 2-D Transpose of either),
// the LM head, embedding tables, and the reasons a weight is left float.
//
// Internal to core/onnx; not installed. Functions only read the graph (they
// take mutable graphs because ConstWeight points at mutable tensors);
// NodeExclusion is immutable after Create and safe to share.
#ifndef QUANTD_CORE_ONNX_WEIGHT_MATCHER_H_
#define QUANTD_CORE_ONNX_WEIGHT_MATCHER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"
#include "quantd/core/name_patterns.h"
#include "quantd/core/recipe.h"

namespace quantd::core {

// A constant weight feeding a node: the tensor holding data and how it got
// there. Pointers are into the graph given to ResolveWeight, which owns them.
struct ConstWeight {
  onnx::TensorProto* tensor = nullptr;
  onnx::NodeProto* constant = nullptr;   // Constant node holding it, or null
  onnx::NodeProto* transpose = nullptr;  // folded 2-D Transpose, or null
  std::string value;                     // the name the consumer reads
};

// Resolves `value` of graph `g` to a constant weight: an initializer that is
// not also a graph input, a default-domain Constant with a tensor `value`, or
// a 2-D Transpose (perm [1, 0] or none) of either. False for anything else.
bool ResolveWeight(onnx::GraphProto* g, const std::string& value, ConstWeight* out);

// The LM head: the MatMul/Gemm with a constant weight closest to the logits
// output (the first graph output whose name contains "logits"); null when the
// model has no such output. The pointer is into `g`.
const onnx::NodeProto* FindLmHead(const onnx::GraphProto& g);

// The LM head found by structure, for models whose logits output has another
// name: the MatMul/Gemm with a constant 2-D weight whose output width equals
// the rows of an embedding table of `g` (a Gather on axis 0 of a constant 2-D
// table) and which feeds a graph output through at most 8 shape/type/softcap
// steps (Reshape, Cast, Squeeze, Unsqueeze, Identity, Tanh, Mul, Div, Add).
// Null when no node qualifies. The pointer is into `g`.
const onnx::NodeProto* FindLmHeadByStructure(const onnx::GraphProto& g);

// The LM head as the recipe names it (lm_head_node, exact node name, main
// graph), else FindLmHead, else FindLmHeadByStructure. InvalidArgument when
// lm_head_node names no MatMul/Gemm of `g`.
absl::StatusOr<const onnx::NodeProto*> LocateLmHead(const onnx::GraphProto& g,
                                                   const std::string& lm_head_node);

// Why weight `w` of node `n` (MatMul, Gemm, Conv or Gather) cannot be
// quantized, or "" when it can.
std::string SkipReason(const onnx::NodeProto& n, const ConstWeight& w,
                       uint64_t min_tensor_elements);

// Why Gather `n` reading table `w` is not a quantizable embedding (a
// Transpose, an axis other than 0, or SkipReason), or "" when it is.
std::string EmbeddingSkipReason(const onnx::NodeProto& n, const ConstWeight& w,
                                uint64_t min_tensor_elements);

// Whether some default-domain Gather of `g` or its subgraphs reads a
// quantizable embedding table.
bool HasEmbedding(onnx::GraphProto* g, uint64_t min_tensor_elements);

// The name a skip note shows for `n`: its name, else its first output.
std::string NodeLabel(const onnx::NodeProto& n);

// The recipe's node exclusions: exact names (exclude_nodes) and regular
// expressions that must match the whole name (exclude_regex, RE2: linear
// time in the name, see name_patterns.h).
class NodeExclusion {
 public:
  // Excludes nothing.
  NodeExclusion() = default;

  // Errors: InvalidArgument naming exclude_regex when a pattern does not
  // compile or the patterns exceed NamePatterns' limits.
  static absl::StatusOr<NodeExclusion> Create(const Recipe& recipe);

  // Whether `node_name` is excluded.
  bool Excludes(const std::string& node_name) const;

 private:
  std::vector<std::string> names_;
  NamePatterns patterns_;
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_WEIGHT_MATCHER_H_
