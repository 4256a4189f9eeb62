#include "int4_rewrite.h"

#include <string>
#include <utility>
#include <vector>

#include "quantd/core/onnx/onnx_types.h"

namespace quantd::core {

quant::Int4Options Int4OptionsFor(const Recipe& recipe, quant::Int4Layout layout) {
  quant::Int4Options o;
  o.block_size = recipe.block_size;
  o.symmetric = recipe.symmetric;
  o.layout = layout;
  o.algorithm = recipe.algorithm == QuantAlgorithm::kSearch ? quant::Int4Algorithm::kSearch
                                                            : quant::Int4Algorithm::kRtn;
  return o;
}

namespace {

WeightSpec Int4Spec(const quant::MatrixSource& geometry, const quant::Int4Options& options) {
  WeightSpec spec;
  spec.geometry = geometry;
  spec.int4 = true;
  spec.int4_options = options;
  return spec;
}

}  // namespace

std::vector<std::string> MatMulNBitsInitializers(RewriteContext* ctx, onnx::GraphProto* g,
                                                 const ConstWeight& w, bool transposed, int bits) {
  GraphEdit& edit = *ctx->edit;
  const int32_t type = w.tensor->data_type();
  const quant::MatrixSource geo = Geometry(*w.tensor, transposed);
  const quant::Int4Options o = Int4OptionsFor(ctx->recipe, quant::Int4Layout::kMatMulNBits);
  const auto sizes = quant::ComputeInt4Sizes(geo.k, geo.n, o);
  const bool eight = bits == 8;
  WeightSpec spec = Int4Spec(geo, o);
  spec.nbits8 = eight;
  PreparedWeight p =
      PrepareWeight(ctx, g, eight ? Product::kMatMulNBits8 : Product::kMatMulNBits, w, transposed,
                    spec, eight ? "UINT8 (MatMulNBits)" : "UINT4 (MatMulNBits)");
  std::vector<std::string>& names = p.names;
  const std::string suffix = eight ? "_Q8" : "_Q4";
  if (p.weight != nullptr) {
    names.push_back(edit.UniqueName(w.value + suffix));
    names.push_back(edit.UniqueName(w.value + "_scales"));
    edit.AddDeferredInitializer(g, names[0], kOnnxUint8,
                                {geo.n, sizes.blocks, o.block_size * bits / 8}, p.weight, kCodes);
    edit.AddDeferredInitializer(g, names[1], type, {sizes.scale_count}, p.weight, kScales);
    if (!o.symmetric) {
      names.push_back(edit.UniqueName(w.value + "_zero_points"));
      edit.AddDeferredInitializer(g, names[2], kOnnxUint8,
                                  {eight ? sizes.scale_count : sizes.zero_point_bytes}, p.weight,
                                  kZeroPoints);
    }
  }
  return names;
}

absl::Status RewriteMatMulNBits(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                                const ConstWeight& w, bool transposed, int bits) {
  GraphEdit& edit = *ctx->edit;
  const quant::MatrixSource geo = Geometry(*w.tensor, transposed);
  const quant::Int4Options o = Int4OptionsFor(ctx->recipe, quant::Int4Layout::kMatMulNBits);
  const bool eight = bits == 8;
  const std::vector<std::string> names = MatMulNBitsInitializers(ctx, g, w, transposed, bits);
  const std::string suffix = eight ? "_Q8" : "_Q4";
  const bool gemm = n->op_type() == "Gemm";
  std::string bias = gemm && n->input_size() > 2 ? n->input(2) : "";
  const std::string a = n->input(0);
  std::string y = n->output(0);
  std::vector<onnx::NodeProto> nodes;
  std::string mm_out = y;
  if (!bias.empty()) mm_out = edit.UniqueName(y + "_MatMulNBits");
  std::vector<std::string> inputs = {a, names[0], names[1]};
  if (names.size() > 2) inputs.push_back(names[2]);
  onnx::NodeProto q = edit.MakeNode(
      "MatMulNBits", (n->name().empty() ? y : n->name()) + suffix, inputs, {mm_out});
  q.set_domain("com.microsoft");
  SetIntAttr(&q, "K", geo.k);
  SetIntAttr(&q, "N", geo.n);
  SetIntAttr(&q, "bits", bits);
  SetIntAttr(&q, "block_size", o.block_size);
  if (ctx->recipe.accuracy_level.value_or(0) > 0) {
    SetIntAttr(&q, "accuracy_level", *ctx->recipe.accuracy_level);
  }
  nodes.push_back(std::move(q));
  if (!bias.empty()) nodes.push_back(edit.MakeNode("Add", y + "_bias", {mm_out, bias}, {y}));
  edit.Replace(n, std::move(nodes));
  ctx->used_ms_domain = true;
  return absl::OkStatus();
}

absl::Status RewriteInt4Qdq(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                            const ConstWeight& w, bool transposed) {
  GraphEdit& edit = *ctx->edit;
  const int32_t type = w.tensor->data_type();
  const quant::MatrixSource geo = Geometry(*w.tensor, transposed);
  const quant::Int4Options o = Int4OptionsFor(ctx->recipe, quant::Int4Layout::kQdq);
  const auto sizes = quant::ComputeInt4Sizes(geo.k, geo.n, o);
  PreparedWeight p = PrepareWeight(ctx, g, Product::kInt4Qdq, w, transposed, Int4Spec(geo, o),
                                   o.symmetric ? "INT4" : "UINT4");
  std::vector<std::string>& names = p.names;
  if (p.weight != nullptr) {
    names.push_back(edit.UniqueName(w.value + "_Q4"));
    names.push_back(edit.UniqueName(w.value + "_scales"));
    edit.AddDeferredInitializer(g, names[0], o.symmetric ? kOnnxInt4 : kOnnxUint4, {geo.k, geo.n},
                                p.weight, kCodes);
    edit.AddDeferredInitializer(g, names[1], type, {sizes.blocks, geo.n}, p.weight, kScales);
    std::vector<std::string> inputs = {names[0], names[1]};
    if (!o.symmetric) {
      std::string zp = edit.UniqueName(w.value + "_zero_points");
      edit.AddDeferredInitializer(g, zp, kOnnxUint4, {sizes.blocks, geo.n}, p.weight, kZeroPoints);
      inputs.push_back(zp);
    }
    std::string out = edit.UniqueName(w.value + "_DQ");
    onnx::NodeProto dq = edit.MakeNode("DequantizeLinear", out, inputs, {out});
    SetIntAttr(&dq, "axis", 0);
    SetIntAttr(&dq, "block_size", o.block_size);
    names.push_back(out);
    edit.InsertBefore(n, std::move(dq));
  }
  ReadDequantizedWeight(n, names.back());
  return absl::OkStatus();
}

}  // namespace quantd::core
