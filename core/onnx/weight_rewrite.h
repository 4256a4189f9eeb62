// What the rewrites of the quantize pass (int4_rewrite, int8_rewrite,
// embedding_rewrite) share: the state of one pass run they read and update,
// the geometry of a 2-D weight, and the preparation step that opens every
// rewrite (reuse the names minted for the same weight, or create the
// DeferredWeight that will compute it).
//
// Internal to core/onnx; not installed. A RewriteContext belongs to one pass
// run; not thread-safe.
#ifndef QUANTD_CORE_ONNX_WEIGHT_REWRITE_H_
#define QUANTD_CORE_ONNX_WEIGHT_REWRITE_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "deferred_weight.h"
#include "graph_edit.h"
#include "onnx/onnx_pb.h"
#include "opset.h"
#include "quantd/core/onnx/onnx_model.h"
#include "quantd/core/progress.h"
#include "quantd/core/recipe.h"
#include "quantd/core/report.h"
#include "weight_matcher.h"

namespace quantd::core {

// The state rewrites share during one pass run. The pointers are not owned
// and outlive the context; `report` must outlive OnnxModel::Save().
struct RewriteContext {
  const Recipe& recipe;
  OpsetPlan opsets;
  OnnxModel* model = nullptr;
  Report* report = nullptr;
  const RunContext* run = nullptr;  // threads and cancel token; outlives Save()
  GraphEdit* edit = nullptr;
  // Gathered while rewriting, applied by the pass at the end.
  bool used_ms_domain = false;       // some node is in the com.microsoft domain
  std::set<std::string> notes = {};  // report notes, each once
};

// The geometry of W[K, N] as the consumer reads it from 2-D tensor `t`:
// t itself ([K, N]) or, when `transposed`, t stored as [N, K].
quant::MatrixSource Geometry(const onnx::TensorProto& t, bool transposed);

// The outcome of PrepareWeight.
struct PreparedWeight {
  // Names minted for this product of the weight so far; empty the first time.
  std::vector<std::string>& names;
  // Set only the first time: the rewrite adds its outputs and fills `names`.
  std::shared_ptr<DeferredWeight> weight;
};

// The opening every rewrite shares. When product `product` of weight `w` (read
// `transposed` or not) already exists in graph `g`, returns its names.
// Otherwise creates the DeferredWeight computing `spec`, adds its report
// entry (dtype after: `dtype_after`) and books `w` as its source.
PreparedWeight PrepareWeight(RewriteContext* ctx, const onnx::GraphProto* g, Product product,
                             const ConstWeight& w, bool transposed, const WeightSpec& spec,
                             const std::string& dtype_after);

// Points input 1 of MatMul/Gemm `n` at `value`, the dequantized weight
// [K, N] (a Gemm no longer transposes it).
void ReadDequantizedWeight(onnx::NodeProto* n, const std::string& value);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_WEIGHT_REWRITE_H_
