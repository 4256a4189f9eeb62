#include "embedding_rewrite.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "int4_rewrite.h"
#include "int8_rewrite.h"
#include "quantd/core/onnx/graph_utils.h"
#include "quantd/core/onnx/onnx_types.h"

namespace quantd::core {
namespace {

// E[vocab, hidden] seen as W[K = hidden, N = vocab] (stored transposed), so
// the kernels' per-column scales are per-row scales of E.
quant::MatrixSource EmbeddingGeometry(const onnx::TensorProto& t) { return Geometry(t, true); }

// Turns Gather `n` (data, indices) into com.microsoft.GatherBlockQuantized
// reading `q` = {codes, scales[, zero points]}, blocks along hidden.
void MakeGatherBlockQuantized(RewriteContext* ctx, onnx::NodeProto* n,
                              const std::vector<std::string>& q, int64_t block_size, int bits) {
  const std::string indices = n->input(1);
  n->clear_input();
  n->add_input(q[0]);
  n->add_input(indices);
  for (size_t i = 1; i < q.size(); ++i) n->add_input(q[i]);
  n->set_op_type("GatherBlockQuantized");
  n->set_domain("com.microsoft");
  n->clear_attribute();  // Gather's axis is 0 here (EmbeddingSkipReason)
  SetIntAttr(n, "gather_axis", 0);
  SetIntAttr(n, "quantize_axis", 1);
  SetIntAttr(n, "block_size", block_size);
  SetIntAttr(n, "bits", bits);
  ctx->used_ms_domain = true;
}

// A small int64 initializer of graph `g` (a Reshape target shape), stored
// inline; returns its name.
std::string AddShapeInitializer(GraphEdit* edit, onnx::GraphProto* g, const std::string& base,
                                const std::vector<int64_t>& dims) {
  const std::string name = edit->UniqueName(base);
  onnx::TensorProto* t = g->add_initializer();
  t->set_name(name);
  SetInt64Tensor(t, dims);
  return name;
}

}  // namespace

absl::Status RewriteEmbeddingInt4(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                                  const ConstWeight& w) {
  GraphEdit& edit = *ctx->edit;
  const int32_t type = w.tensor->data_type();
  WeightSpec spec;
  spec.geometry = EmbeddingGeometry(*w.tensor);
  spec.int4 = true;
  spec.int4_options = Int4OptionsFor(ctx->recipe, quant::Int4Layout::kQdq);
  // E [vocab, hidden] is W [hidden, vocab] with contiguous columns; stored
  // n-major, the codes, scales and zero points are E's [vocab, hidden] and
  // [vocab, blocks], as DequantizeLinear(axis=1) and GatherBlockQuantized
  // read them.
  spec.int4_options.n_major = true;
  const quant::MatrixSource& geo = spec.geometry;
  const quant::Int4Options& o = spec.int4_options;
  const auto sizes = quant::ComputeInt4Sizes(geo.k, geo.n, o);
  PreparedWeight p = PrepareWeight(ctx, g, Product::kEmbeddingInt4, w, /*transposed=*/false, spec,
                                   o.symmetric ? "INT4 (Gather)" : "UINT4 (Gather)");
  if (p.weight != nullptr) {
    std::string q = edit.UniqueName(w.value + "_quantized");
    std::string s = edit.UniqueName(w.value + "_scale");
    edit.AddDeferredInitializer(g, q, o.symmetric ? kOnnxInt4 : kOnnxUint4, {geo.n, geo.k},
                                p.weight, kCodes);
    edit.AddDeferredInitializer(g, s, type, {geo.n, sizes.blocks}, p.weight, kScales);
    std::vector<std::string> inputs = {q, s};
    if (!o.symmetric) {
      std::string zp = edit.UniqueName(w.value + "_zero_point");
      edit.AddDeferredInitializer(g, zp, kOnnxUint4, {geo.n, sizes.blocks}, p.weight, kZeroPoints);
      inputs.push_back(zp);
    }
    if (ctx->recipe.embedding_op == EmbeddingOp::kGatherBlockQuantized) {
      p.names = inputs;  // codes, scales[, zero points]: read by GatherBlockQuantized
    } else {
      std::string out = edit.UniqueName(w.value + "_DQ");
      onnx::NodeProto dq = edit.MakeNode("DequantizeLinear", out, inputs, {out});
      SetIntAttr(&dq, "axis", 1);
      SetIntAttr(&dq, "block_size", o.block_size);
      edit.InsertBefore(n, std::move(dq));
      p.names.push_back(out);
    }
  }
  if (ctx->recipe.embedding_op == EmbeddingOp::kGatherBlockQuantized) {
    // com.microsoft.GatherBlockQuantized(data, indices, scales[, zero_points]):
    // the same INT4/UINT4 codes [vocab, hidden] and 2-D scales [vocab,
    // blocks] as the DequantizeLinear form, blocks along hidden (axis 1).
    MakeGatherBlockQuantized(ctx, n, p.names, o.block_size, 4);
    return absl::OkStatus();
  }
  n->set_input(0, p.names.back());
  return absl::OkStatus();
}

absl::Status RewriteEmbeddingInt8(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                                  const ConstWeight& w) {
  const int32_t type = w.tensor->data_type();
  const quant::MatrixSource geo = EmbeddingGeometry(*w.tensor);
  quant::Int8Options o;
  o.type = quant::Int8Type::kInt8;               // symmetric, zero point 0
  o.per_channel = ctx->opsets.int8_per_channel;  // one scale per row (DequantizeLinear axis 0)
  o.out_row_stride = 1;                          // codes keep E's layout [vocab, hidden]
  o.out_col_stride = geo.k;
  const bool fp16 = type == kOnnxFloat16;
  WeightSpec spec;
  spec.geometry = geo;
  spec.int4 = false;
  spec.int8_options = o;
  spec.scale_type = fp16 && ctx->opsets.opset >= 19 ? kOnnxFloat16 : kOnnxFloat;
  PreparedWeight p =
      PrepareWeight(ctx, g, Product::kEmbeddingInt8, w, /*transposed=*/false, spec,
                    o.per_channel ? "INT8 (Gather, per row)" : "INT8 (Gather, per tensor)");
  if (p.weight != nullptr) {
    p.names.push_back(
        AddInt8Dequantize(ctx, g, n, w, p.weight, kOnnxInt8, {geo.n, geo.k}, geo.n, 0));
  }
  n->set_input(0, p.names.back());
  return absl::OkStatus();
}

absl::Status RewriteEmbeddingGatherBlockQuantized8(RewriteContext* ctx, onnx::GraphProto* g,
                                                   onnx::NodeProto* n, const ConstWeight& w) {
  GraphEdit& edit = *ctx->edit;
  WeightSpec spec;
  spec.geometry = EmbeddingGeometry(*w.tensor);
  spec.int4 = false;
  spec.int4_options = Int4OptionsFor(ctx->recipe, quant::Int4Layout::kMatMulNBits);
  spec.nbits8 = true;  // MatMulNBits' 8-bit codes of W[K = hidden, N = vocab]: E's rows
  spec.nbits8_unpadded = true;
  const quant::MatrixSource& geo = spec.geometry;
  const quant::Int4Options& o = spec.int4_options;
  const int64_t blocks = (geo.k + o.block_size - 1) / o.block_size;
  PreparedWeight p = PrepareWeight(ctx, g, Product::kEmbeddingGatherBlockQuantized8, w,
                                   /*transposed=*/false, spec, "UINT8 (GatherBlockQuantized)");
  if (p.weight != nullptr) {
    p.names.push_back(edit.UniqueName(w.value + "_quantized"));
    p.names.push_back(edit.UniqueName(w.value + "_scale"));
    edit.AddDeferredInitializer(g, p.names[0], kOnnxUint8, {geo.n, geo.k}, p.weight, kCodes);
    edit.AddDeferredInitializer(g, p.names[1], w.tensor->data_type(), {geo.n, blocks}, p.weight,
                                kScales);
    if (!o.symmetric) {
      p.names.push_back(edit.UniqueName(w.value + "_zero_point"));
      edit.AddDeferredInitializer(g, p.names[2], kOnnxUint8, {geo.n, blocks}, p.weight,
                                  kZeroPoints);
    }
  }
  MakeGatherBlockQuantized(ctx, n, p.names, o.block_size, 8);
  return absl::OkStatus();
}

absl::Status RewriteTiedEmbedding(RewriteContext* ctx, onnx::GraphProto* g, onnx::NodeProto* n,
                                  const ConstWeight& head, bool transposed, int bits) {
  GraphEdit& edit = *ctx->edit;
  const quant::MatrixSource geo = Geometry(*head.tensor, transposed);
  const int64_t block_size = ctx->recipe.block_size;
  const int64_t blocks = geo.k / block_size;
  const std::vector<std::string> q = MatMulNBitsInitializers(ctx, g, head, transposed, bits);
  // MatMulNBits keeps codes 3-D and scales / zero points 1-D;
  // GatherBlockQuantized wants them 2-D with the rank of the data.
  const std::vector<std::vector<int64_t>> shapes = {
      {geo.n, geo.k * bits / 8}, {geo.n, blocks}, {geo.n, bits == 8 ? blocks : (blocks + 1) / 2}};
  const char* const kParts[] = {"codes", "scales", "zero_points"};
  std::vector<std::string> reshaped;
  for (size_t i = 0; i < q.size(); ++i) {
    const std::string base = (n->name().empty() ? n->output(0) : n->name()) + "/" + kParts[i];
    const std::string shape = AddShapeInitializer(&edit, g, base + "_shape", shapes[i]);
    const std::string out = edit.UniqueName(base + "_2d");
    edit.InsertBefore(n, edit.MakeNode("Reshape", base + "/Reshape", {q[i], shape}, {out}));
    reshaped.push_back(out);
  }
  MakeGatherBlockQuantized(ctx, n, reshaped, block_size, bits);
  ctx->notes.insert(absl::StrCat(
      "tied embedding / LM head: the Gather of '", head.tensor->name(), "' reads the LM head's ",
      bits, "-bit MatMulNBits codes through GatherBlockQuantized (the table is stored once)"));
  return absl::OkStatus();
}

}  // namespace quantd::core
