#include "int8_rewrite.h"

#include <utility>
#include <vector>

#include "quantd/core/onnx/graph_utils.h"
#include "quantd/core/onnx/onnx_types.h"

namespace quantd::core {
namespace {

// The recipe's INT8 weight type and range; per channel and layout are set
// by each rewrite.
quant::Int8Options Int8OptionsFor(const Recipe& recipe) {
  quant::Int8Options o;
  o.type = recipe.int8_weight_type == Int8WeightType::kQUInt8 ? quant::Int8Type::kUint8
                                                              : quant::Int8Type::kInt8;
  o.reduce_range = recipe.reduce_range;
  return o;
}

int32_t OnnxInt8Type(const quant::Int8Options& o) {
  return o.type == quant::Int8Type::kInt8 ? kOnnxInt8 : kOnnxUint8;
}

// A Conv weight W[M, C/group, k...] as an INT8 matrix: channel m is one
// contiguous column of the view; codes keep W's shape.
quant::MatrixSource ConvGeometry(const onnx::TensorProto& w, quant::Int8Options* o,
                                 std::vector<int64_t>* q_dims) {
  int64_t rest = 1;
  for (int i = 1; i < w.dims_size(); ++i) rest *= w.dims(i);
  quant::MatrixSource geo;
  geo.onnx_type = w.data_type();
  geo.k = rest;
  geo.n = w.dims(0);
  geo.row_stride = 1;
  geo.col_stride = rest;
  o->out_row_stride = 1;
  o->out_col_stride = rest;
  q_dims->assign(w.dims().begin(), w.dims().end());
  return geo;
}

// A 2-D weight read as W[K, N]: codes are stored [K, N], row-major.
quant::MatrixSource MatrixGeometry(const ConstWeight& w, bool transposed, quant::Int8Options* o,
                                   std::vector<int64_t>* q_dims) {
  quant::MatrixSource geo = Geometry(*w.tensor, transposed);
  o->out_row_stride = geo.n;
  o->out_col_stride = 1;
  *q_dims = {geo.k, geo.n};
  return geo;
}

WeightSpec Int8Spec(const quant::MatrixSource& geometry, const quant::Int8Options& options,
                    int32_t scale_type) {
  WeightSpec spec;
  spec.geometry = geometry;
  spec.int4 = false;
  spec.int8_options = options;
  spec.scale_type = scale_type;
  return spec;
}

}  // namespace

absl::Status RewriteInt8Qdq(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                            const ConstWeight& w, bool transposed) {
  const Recipe& recipe = ctx->recipe;
  const int32_t type = w.tensor->data_type();
  const bool conv = n->op_type() == "Conv";
  quant::MatrixSource geo;
  std::vector<int64_t> q_dims;
  quant::Int8Options o = Int8OptionsFor(recipe);
  // The INT8 LM head of an INT4 model is always per channel when the opset allows.
  o.per_channel =
      (recipe.per_channel || recipe.precision == Precision::kInt4) && ctx->opsets.int8_per_channel;
  int axis = 1;
  if (conv) {
    geo = ConvGeometry(*w.tensor, &o, &q_dims);
    axis = 0;
  } else {
    geo = MatrixGeometry(w, transposed, &o, &q_dims);
  }
  // FP16 scales need DequantizeLinear-19; older opsets dequantize to float
  // and cast back.
  const bool fp16 = type == kOnnxFloat16;
  const int32_t scale_type = fp16 && ctx->opsets.opset >= 19 ? kOnnxFloat16 : kOnnxFloat;
  const int32_t qtype = OnnxInt8Type(o);
  PreparedWeight p = PrepareWeight(ctx, g, Product::kInt8Qdq, w, transposed,
                                   Int8Spec(geo, o, scale_type), OnnxTypeName(qtype));
  if (p.weight != nullptr) {
    p.names.push_back(AddInt8Dequantize(ctx, g, n, w, p.weight, qtype, q_dims, geo.n, axis));
  }
  ReadDequantizedWeight(n, p.names.back());
  return absl::OkStatus();
}

std::string AddInt8Dequantize(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                              const ConstWeight& w, const std::shared_ptr<DeferredWeight>& weight,
                              int32_t qtype, const std::vector<int64_t>& q_dims, int64_t channels,
                              int64_t axis) {
  GraphEdit& edit = *ctx->edit;
  const bool per_channel = weight->spec.int8_options.per_channel;
  const int32_t scale_type = weight->spec.scale_type;
  std::string q = edit.UniqueName(w.value + "_quantized");
  std::string s = edit.UniqueName(w.value + "_scale");
  std::string z = edit.UniqueName(w.value + "_zero_point");
  std::vector<int64_t> p_dims;
  if (per_channel) p_dims = {channels};
  edit.AddDeferredInitializer(g, q, qtype, q_dims, weight, kCodes);
  edit.AddDeferredInitializer(g, s, scale_type, p_dims, weight, kScales);
  edit.AddDeferredInitializer(g, z, qtype, p_dims, weight, kZeroPoints);
  std::string out = edit.UniqueName(w.value + "_DQ");
  onnx::NodeProto dq = edit.MakeNode("DequantizeLinear", out, {q, s, z}, {out});
  if (per_channel) SetIntAttr(&dq, "axis", axis);
  edit.InsertBefore(n, std::move(dq));
  if (w.tensor->data_type() == kOnnxFloat16 && scale_type != kOnnxFloat16) {
    std::string cast = edit.UniqueName(out + "_fp16");
    onnx::NodeProto c = edit.MakeNode("Cast", cast, {out}, {cast});
    SetIntAttr(&c, "to", kOnnxFloat16);
    edit.InsertBefore(n, std::move(c));
    out = cast;
  }
  return out;
}

absl::Status RewriteInt8Dynamic(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                                const ConstWeight& w, bool transposed) {
  GraphEdit& edit = *ctx->edit;
  const int32_t type = w.tensor->data_type();
  const bool conv = n->op_type() == "Conv";
  const bool fp16 = type == kOnnxFloat16;
  quant::MatrixSource geo;
  std::vector<int64_t> q_dims, s_dims, z_dims;
  quant::Int8Options o = Int8OptionsFor(ctx->recipe);
  o.per_channel = ctx->recipe.per_channel;
  if (conv && o.per_channel) {
    // ORT's ConvInteger takes only a per-tensor weight zero point.
    o.per_channel = false;
    ctx->notes.insert(
        "dynamic Conv weights use per-tensor scales (ConvInteger has no per-channel "
        "zero point in ONNX Runtime)");
  }
  if (conv) {
    geo = ConvGeometry(*w.tensor, &o, &q_dims);
    if (o.per_channel) {
      // Scale broadcasts over the output [N, M, spatial...]; zp stays 1-D.
      s_dims.assign(w.tensor->dims_size(), 1);
      s_dims[1] = geo.n;
      z_dims = {geo.n};
    }
  } else {
    geo = MatrixGeometry(w, transposed, &o, &q_dims);
    if (o.per_channel) s_dims = z_dims = {geo.n};
  }
  const int32_t qtype = OnnxInt8Type(o);
  PreparedWeight p = PrepareWeight(ctx, g, Product::kInt8Dynamic, w, transposed,
                                   Int8Spec(geo, o, kOnnxFloat), OnnxTypeName(qtype));
  const std::vector<std::string>& names = p.names;
  if (p.weight != nullptr) {
    p.names.push_back(edit.UniqueName(w.value + "_quantized"));
    p.names.push_back(edit.UniqueName(w.value + "_scale"));
    p.names.push_back(edit.UniqueName(w.value + "_zero_point"));
    edit.AddDeferredInitializer(g, names[0], qtype, q_dims, p.weight, kCodes);
    edit.AddDeferredInitializer(g, names[1], kOnnxFloat, s_dims, p.weight, kScales);
    edit.AddDeferredInitializer(g, names[2], qtype, z_dims, p.weight, kZeroPoints);
  }
  std::vector<onnx::NodeProto> nodes;
  const std::string base = NodeLabel(*n);
  // Activation: float32, then DynamicQuantizeLinear (shared per value).
  std::string a = n->input(0);
  if (fp16) {
    std::vector<std::string>& cast = edit.Cached({g, Product::kFloatActivation, a});
    if (cast.empty()) {
      std::string name = edit.UniqueName(a + "_float");
      onnx::NodeProto c = edit.MakeNode("Cast", name, {a}, {name});
      SetIntAttr(&c, "to", kOnnxFloat);
      nodes.push_back(std::move(c));
      cast.push_back(name);
    }
    a = cast[0];
  }
  std::vector<std::string>& aq = edit.Cached({g, Product::kDynamicActivation, a});
  if (aq.empty()) {
    aq = {edit.UniqueName(a + "_quantized"), edit.UniqueName(a + "_scale"),
          edit.UniqueName(a + "_zero_point")};
    nodes.push_back(
        edit.MakeNode("DynamicQuantizeLinear", a + "_QuantizeLinear", {a}, {aq[0], aq[1], aq[2]}));
  }
  std::string y = n->output(0);
  std::string acc = edit.UniqueName(base + "_output_quantized");
  if (conv) {
    onnx::NodeProto ci =
        edit.MakeNode("ConvInteger", base + "_quant", {aq[0], names[0], aq[2], names[2]}, {acc});
    for (const auto& attr : n->attribute()) *ci.add_attribute() = attr;
    nodes.push_back(std::move(ci));
  } else {
    nodes.push_back(
        edit.MakeNode("MatMulInteger", base + "_quant", {aq[0], names[0], aq[2], names[2]}, {acc}));
  }
  std::string accf = edit.UniqueName(acc + "_cast_output");
  onnx::NodeProto cast = edit.MakeNode("Cast", accf, {acc}, {accf});
  SetIntAttr(&cast, "to", kOnnxFloat);
  nodes.push_back(std::move(cast));
  std::string scales = edit.UniqueName(base + "_scales_mul");
  nodes.push_back(edit.MakeNode("Mul", scales, {aq[1], names[1]}, {scales}));
  std::string bias = n->input_size() > 2 ? n->input(2) : "";
  const bool more = !bias.empty() || fp16;
  std::string out = more ? edit.UniqueName(base + "_output_scaled") : y;
  nodes.push_back(edit.MakeNode("Mul", out, {accf, scales}, {out}));
  if (!bias.empty()) {
    std::string b = bias;
    if (conv) {
      // Bias [M] -> [1, M, 1, ...] to broadcast over the output.
      std::string shape = edit.UniqueName(base + "_bias_shape");
      onnx::TensorProto* t = g->add_initializer();
      t->set_name(shape);
      std::vector<int64_t> dims(static_cast<size_t>(w.tensor->dims_size()), 1);
      if (dims.size() > 1) dims[1] = -1;
      SetInt64Tensor(t, dims);
      std::string reshaped = edit.UniqueName(bias + "_reshaped");
      nodes.push_back(edit.MakeNode("Reshape", reshaped, {bias, shape}, {reshaped}));
      b = reshaped;
    }
    if (fp16) {
      std::string bf = edit.UniqueName(b + "_float");
      onnx::NodeProto c = edit.MakeNode("Cast", bf, {b}, {bf});
      SetIntAttr(&c, "to", kOnnxFloat);
      nodes.push_back(std::move(c));
      b = bf;
    }
    std::string sum = fp16 ? edit.UniqueName(base + "_output_biased") : y;
    nodes.push_back(edit.MakeNode("Add", sum, {out, b}, {sum}));
    out = sum;
  }
  if (fp16) {
    onnx::NodeProto c = edit.MakeNode("Cast", y + "_fp16", {out}, {y});
    SetIntAttr(&c, "to", kOnnxFloat16);
    nodes.push_back(std::move(c));
  }
  edit.Replace(n, std::move(nodes));
  return absl::OkStatus();
}

}  // namespace quantd::core
