#include "weight_rewrite.h"

#include <utility>

#include "quantd/core/onnx/onnx_types.h"

namespace quantd::core {

quant::MatrixSource Geometry(const onnx::TensorProto& t, bool transposed) {
  quant::MatrixSource s;
  s.onnx_type = t.data_type();
  const int64_t r0 = t.dims(0), r1 = t.dims(1);
  if (!transposed) {
    s.k = r0;
    s.n = r1;
    s.row_stride = r1;
    s.col_stride = 1;
  } else {
    s.k = r1;
    s.n = r0;
    s.row_stride = 1;
    s.col_stride = r1;
  }
  return s;
}

PreparedWeight PrepareWeight(RewriteContext* ctx, const onnx::GraphProto* g, Product product,
                             const ConstWeight& w, bool transposed, const WeightSpec& spec,
                             const std::string& dtype_after) {
  std::vector<std::string>& names = ctx->edit->Cached({g, product, w.value, transposed});
  if (!names.empty()) return {names, nullptr};
  auto weight = std::make_shared<DeferredWeight>();
  weight->spec = spec;
  weight->model = ctx->model;
  weight->ctx = ctx->run;
  weight->report = ctx->report;
  weight->report_index = ctx->report->tensors.size();
  weight->measure_quality = ctx->recipe.report_level != ReportLevel::kNone;
  weight->quality_level = ctx->recipe.report_level == ReportLevel::kFull
                              ? quant::QualityLevel::kFull
                              : quant::QualityLevel::kSampled;
  const onnx::TensorProto& t = *w.tensor;
  TensorReport entry;
  entry.name = w.value;
  entry.shape.assign(t.dims().begin(), t.dims().end());
  entry.dtype_before = OnnxTypeName(t.data_type());
  entry.dtype_after = dtype_after;
  auto count = ElementCount({t.dims().data(), static_cast<size_t>(t.dims_size())});
  const uint64_t n = count.ok() ? *count : 0;
  entry.bytes_before = n * (OnnxTypeBits(t.data_type()) / 8);
  ctx->report->tensors.push_back(std::move(entry));
  ctx->report->tensors_converted++;
  ctx->report->weights_quantized += n;
  ctx->report->bytes_before += n * (OnnxTypeBits(t.data_type()) / 8);
  ctx->edit->AddSource(w, weight);
  return {names, std::move(weight)};
}

void ReadDequantizedWeight(onnx::NodeProto* n, const std::string& value) {
  n->set_input(1, value);
  if (n->op_type() == "Gemm") SetIntAttr(n, "transB", 0);
}

}  // namespace quantd::core
