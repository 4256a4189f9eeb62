// Small helpers every ONNX graph pass needs: attribute lookup, subgraph
// walking, fresh value names. Pure functions over protos; not thread-safe
// where they mutate (NameTable).
#ifndef QUANTD_CORE_ONNX_GRAPH_UTILS_H_
#define QUANTD_CORE_ONNX_GRAPH_UTILS_H_

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "onnx/onnx_pb.h"

namespace quantd::core {

// The attribute `name` of `node`, or nullptr.
const onnx::AttributeProto* FindAttr(const onnx::NodeProto& node, absl::string_view name);
int64_t IntAttr(const onnx::NodeProto& node, absl::string_view name, int64_t dflt);
float FloatAttr(const onnx::NodeProto& node, absl::string_view name, float dflt);
// Sets INT attribute `name` of `node` to `value`, adding it when missing.
void SetIntAttr(onnx::NodeProto* node, const std::string& name, int64_t value);

// Graphs held by a node's attributes (If branches, Loop/Scan bodies).
std::vector<onnx::GraphProto*> Subgraphs(onnx::NodeProto* node);
std::vector<const onnx::GraphProto*> Subgraphs(const onnx::NodeProto& node);

// Element type of a tensor type, 0 (UNDEFINED) for non-tensor types.
int32_t ElemType(const onnx::TypeProto& type);

// Makes `t` an INT64 tensor of `values` stored inline (raw little-endian
// bytes): a 1-D tensor of values.size() elements, or a scalar when `scalar`
// (then `values` holds one element). For shape and index constants.
void SetInt64Tensor(onnx::TensorProto* t, absl::Span<const int64_t> values, bool scalar = false);

// Version of the default (ai.onnx) domain the model imports, 0 if none.
int64_t DefaultOpsetVersion(const onnx::ModelProto& model);

// Every value and node name used anywhere in a graph and its subgraphs, to
// mint names that collide with none of them.
class NameTable {
 public:
  explicit NameTable(const onnx::GraphProto& graph);
  // `base` if unused, else `base_1`, `base_2`, ...; the name is then taken.
  std::string Unique(const std::string& base);

 private:
  void Collect(const onnx::GraphProto& graph);
  std::unordered_set<std::string> names_;
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_GRAPH_UTILS_H_
