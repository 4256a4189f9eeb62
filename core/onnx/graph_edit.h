// Graph surgery for the quantize pass. Rewrites do not edit node lists while
// the pass walks them: they queue nodes to insert in front of, or in place
// of, an existing node, and RebuildNodes applies the queue once per graph.
// New initializers get their data later from a DeferredWeight. FinishSources
// then hands every DeferredWeight its source data and removes the float
// tensors (and folded Transposes) nothing reads any more.
//
// Internal to core/onnx; not installed. A GraphEdit belongs to one pass run
// over one model; not thread-safe.
#ifndef QUANTD_CORE_ONNX_GRAPH_EDIT_H_
#define QUANTD_CORE_ONNX_GRAPH_EDIT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "deferred_weight.h"
#include "onnx/onnx_pb.h"
#include "quantd/core/onnx/graph_utils.h"
#include "quantd/core/onnx/onnx_model.h"
#include "weight_matcher.h"

namespace quantd::core {

// What a set of names minted by a rewrite stands for.
enum class Product {
  kMatMulNBits,        // MatMulNBits initializers of a weight
  kMatMulNBits8,       // MatMulNBits bits=8 initializers of a weight
  kInt4Qdq,            // INT4 initializers and DequantizeLinear of a weight
  kInt8Qdq,            // INT8 initializers and DequantizeLinear (+ Cast) of a weight
  kInt8Dynamic,        // INT8 initializers of a weight for MatMulInteger/ConvInteger
  kEmbeddingInt4,      // INT4 DequantizeLinear of an embedding table
  kEmbeddingInt8,      // INT8 DequantizeLinear (+ Cast) of an embedding table
  kFloatActivation,    // Cast of an FP16 activation to FLOAT
  kDynamicActivation,  // DynamicQuantizeLinear outputs of an activation
  kEmbeddingGatherBlockQuantized8,  // GatherBlockQuantized bits=8 initializers of a table
};

// Key of the names cache: product `product` of value `value` in `graph`, read
// transposed or not. Two readers of the same key share the minted names (a
// weight read twice the same way is quantized once per graph).
struct CacheKey {
  const onnx::GraphProto* graph = nullptr;  // identity only, never dereferenced
  Product product = Product::kMatMulNBits;
  std::string value;
  bool transposed = false;

  friend bool operator==(const CacheKey& a, const CacheKey& b);
  friend bool operator<(const CacheKey& a, const CacheKey& b);
};

class GraphEdit {
 public:
  // `model` must outlive the GraphEdit; its graph supplies the names to avoid.
  explicit GraphEdit(OnnxModel* model);
  GraphEdit(const GraphEdit&) = delete;
  GraphEdit& operator=(const GraphEdit&) = delete;

  // A value or node name used nowhere in the model: `base`, else `base_1`, ...
  std::string UniqueName(const std::string& base) { return names_.Unique(base); }

  // A default-domain node named UniqueName(`name`).
  onnx::NodeProto MakeNode(const std::string& op, const std::string& name,
                           std::vector<std::string> inputs, std::vector<std::string> outputs);

  // Names minted for `key` so far; empty the first time (the caller fills it).
  // The reference stays valid for the GraphEdit's lifetime.
  std::vector<std::string>& Cached(const CacheKey& key) { return cache_[key]; }

  // Queues `node` to go in front of `anchor` (after earlier queued nodes).
  void InsertBefore(const onnx::NodeProto* anchor, onnx::NodeProto node);
  // Queues `nodes` to take the place of `anchor`, which is then deleted.
  void Replace(const onnx::NodeProto* anchor, std::vector<onnx::NodeProto> nodes);
  // Applies the queued insertions and replacements for nodes of `g`.
  void RebuildNodes(onnx::GraphProto* g);

  // Adds initializer `name` (`type`, `dims`) to `g`, whose data is output
  // `slot` of `weight`, and books its size in weight->report.
  onnx::TensorProto* AddDeferredInitializer(onnx::GraphProto* g, const std::string& name,
                                            int32_t type, const std::vector<int64_t>& dims,
                                            const std::shared_ptr<DeferredWeight>& weight,
                                            WeightOutput slot);

  // Records that `weight` quantizes the data of `w` (FinishSources gives it
  // its source); a folded Transpose becomes a candidate for removal.
  void AddSource(const ConstWeight& w, std::shared_ptr<DeferredWeight> weight);

  // Call once, after every graph was rebuilt. Gives every DeferredWeight its
  // data source: the original tensor's data when nothing else reads it (the
  // initializer or Constant is then removed), a copy of the tensor's
  // reference otherwise. Folded Transposes nothing reads are removed.
  absl::Status FinishSources();

 private:
  struct SourceUse {
    ConstWeight weight;
    std::vector<std::shared_ptr<DeferredWeight>> weights;
  };

  OnnxModel* const model_;
  NameTable names_;
  std::map<CacheKey, std::vector<std::string>> cache_;
  std::map<const onnx::NodeProto*, std::vector<onnx::NodeProto>> before_;
  std::map<const onnx::NodeProto*, std::vector<onnx::NodeProto>> replace_;
  std::map<onnx::TensorProto*, SourceUse> sources_;
  std::set<const onnx::NodeProto*> transposes_;  // folded Transposes
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_GRAPH_EDIT_H_
