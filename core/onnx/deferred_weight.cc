#include "deferred_weight.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core {
namespace {

// Names the tensor in a quantizer's InvalidArgument (a NaN/Inf weight, a
// short buffer).
absl::Status WithTensorName(absl::Status st, const std::string& name) {
  if (st.code() != absl::StatusCode::kInvalidArgument) return st;
  return absl::InvalidArgumentError(
      absl::StrCat("tensor '", absl::string_view(name).substr(0, 256), "' ", st.message()));
}

}  // namespace

absl::Status DeferredWeight::Compute() {
  quant::MatrixSource s = spec.geometry;
  // A row-major W [K, N] whose producer also gives W^T [N, K] (the
  // checkpoint's own layout) is read that way: the kernels take W by
  // column without the float32 transpose being made first.
  const bool row_major = s.col_stride == 1 && s.row_stride == s.n;
  const bool by_column = row_major && model->HasTransposed(*src);
  // INT4 or blockwise INT8 from float32 weights that are exactly bfloat16 (a
  // BF16 checkpoint): the quantizer reads the 16-bit rows (same codes,
  // float32 scales) and no float32 copy of the weight is made.
  const bool bfloat16 = by_column && (spec.int4 || spec.nbits8) && s.onnx_type == kOnnxFloat &&
                        model->HasTransposedBfloat16(*src);
  absl::StatusOr<TensorData> read = bfloat16    ? model->ReadTransposedBfloat16(*src)
                                    : by_column ? model->ReadTransposed(*src)
                                                : model->Read(*src);
  QUANTD_RETURN_IF_ERROR(read.status());
  TensorData data = *std::move(read);
  if (by_column) {
    s.row_stride = 1;
    s.col_stride = s.k;
  }
  if (bfloat16) s.onnx_type = kOnnxBfloat16;
  s.bytes = data.bytes();
  TensorReport quality;
  TensorReport* q = measure_quality ? &quality : nullptr;
  outputs.assign(3, {});
  if (spec.nbits8) {
    absl::StatusOr<quant::Blockwise8Result> q8 = quant::QuantizeBlockwise8Matrix(
        s, spec.int4_options.block_size, spec.int4_options.symmetric, *ctx, q, quality_level);
    if (!q8.ok()) return WithTensorName(q8.status(), report->tensors[report_index].name);
    outputs[kCodes] = std::move(q8->codes);
    const int64_t k = spec.geometry.k, n = spec.geometry.n, bs = spec.int4_options.block_size;
    const int64_t padded = (k + bs - 1) / bs * bs;
    if (spec.nbits8_unpadded && padded != k) {
      std::vector<uint8_t>& codes = outputs[kCodes];
      for (int64_t row = 1; row < n; ++row) {  // rows move down in place, in order
        std::memmove(codes.data() + row * k, codes.data() + row * padded, k);
      }
      codes.resize(n * k);
    }
    outputs[kScales] = std::move(q8->scales);
    outputs[kZeroPoints] = std::move(q8->zero_points);
  } else if (spec.int4) {
    const quant::Int4Options& o = spec.int4_options;
    absl::StatusOr<quant::Int4Result> q4 = quant::QuantizeInt4Matrix(s, o, *ctx, q, quality_level);
    if (!q4.ok()) return WithTensorName(q4.status(), report->tensors[report_index].name);
    quant::Int4Result& r = *q4;
    outputs[kCodes] = std::move(r.packed);
    outputs[kScales] = std::move(r.scales);
    outputs[kZeroPoints] = std::move(r.zero_points);
  } else {
    absl::StatusOr<quant::Int8Result> q8 =
        quant::QuantizeInt8Matrix(s, spec.int8_options, *ctx, q, quality_level);
    if (!q8.ok()) return WithTensorName(q8.status(), report->tensors[report_index].name);
    quant::Int8Result& r = *q8;
    outputs[kCodes] = std::move(r.data);
    const size_t n = r.params.size();
    std::vector<uint8_t>& scales = outputs[kScales];
    if (spec.scale_type == kOnnxFloat16) {
      scales.resize(n * 2);
      for (size_t i = 0; i < n; ++i) {
        uint16_t h = FloatToHalf(r.params[i].scale);
        std::memcpy(scales.data() + 2 * i, &h, 2);
      }
    } else {
      scales.resize(n * 4);
      for (size_t i = 0; i < n; ++i) std::memcpy(scales.data() + 4 * i, &r.params[i].scale, 4);
    }
    outputs[kZeroPoints].resize(n);
    for (size_t i = 0; i < n; ++i) {
      outputs[kZeroPoints][i] = static_cast<uint8_t>(r.params[i].zero_point);
    }
  }
  TensorReport& entry = report->tensors[report_index];
  entry.sqnr_db = quality.sqnr_db;
  entry.rel_l2_error = quality.rel_l2_error;
  entry.max_abs_error = quality.max_abs_error;
  entry.rel_output_error = quality.rel_output_error;
  src.reset();  // the input mapping of this tensor is no longer needed
  return absl::OkStatus();
}

TensorProducer ProducerFor(std::shared_ptr<DeferredWeight> weight, WeightOutput slot) {
  return [weight, slot]() -> absl::StatusOr<std::vector<uint8_t>> {
    if (!weight->done) {
      weight->status = weight->Compute();
      weight->done = true;
    }
    if (!weight->status.ok()) return weight->status;
    return std::move(weight->outputs[slot]);
  };
}

}  // namespace quantd::core
