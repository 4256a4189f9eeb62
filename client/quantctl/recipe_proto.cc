#include "recipe_proto.h"

namespace quantd::quantctl {
namespace {

v1::ModelFormat FormatToProto(core::ModelFormat f) {
  switch (f) {
    case core::ModelFormat::kOnnx:
      return v1::MODEL_FORMAT_ONNX;
    case core::ModelFormat::kGguf:
      return v1::MODEL_FORMAT_GGUF;
    case core::ModelFormat::kAuto:
      break;
  }
  return v1::MODEL_FORMAT_UNSPECIFIED;
}

v1::Precision PrecisionToProto(core::Precision p) {
  switch (p) {
    case core::Precision::kFp32:
      return v1::PRECISION_FP32;
    case core::Precision::kFp16:
      return v1::PRECISION_FP16;
    case core::Precision::kInt8:
      return v1::PRECISION_INT8;
    case core::Precision::kInt4:
      return v1::PRECISION_INT4;
    case core::Precision::kUnspecified:
      break;
  }
  return v1::PRECISION_UNSPECIFIED;
}

v1::ExternalData ExternalDataToProto(core::ExternalDataMode m) {
  switch (m) {
    case core::ExternalDataMode::kAlways:
      return v1::EXTERNAL_DATA_ALWAYS;
    case core::ExternalDataMode::kNever:
      return v1::EXTERNAL_DATA_NEVER;
    case core::ExternalDataMode::kAuto:
      break;
  }
  return v1::EXTERNAL_DATA_AUTO;
}

v1::LmHeadMode LmHeadToProto(core::LmHeadMode m) {
  switch (m) {
    case core::LmHeadMode::kInt8:
      return v1::LM_HEAD_INT8;
    case core::LmHeadMode::kInt4:
      return v1::LM_HEAD_INT4;
    case core::LmHeadMode::kFloat:
      break;
  }
  return v1::LM_HEAD_FLOAT;
}

}  // namespace

v1::Recipe RecipeToProto(const core::Recipe& r) {
  v1::Recipe p;
  p.set_preset(r.preset);
  p.set_format(FormatToProto(r.format));
  p.set_precision(PrecisionToProto(r.precision));
  p.set_keep_io_types(r.keep_io_types);
  if (r.op_block_list) {
    v1::StringList* list = p.mutable_op_block_list();  // present even when empty
    for (const auto& s : *r.op_block_list) list->add_values(s);
  }
  for (const auto& s : r.node_block_list) p.add_node_block_list(s);
  p.set_external_data(ExternalDataToProto(r.external_data));
  p.set_block_size(r.block_size);
  p.set_symmetric(r.symmetric);
  p.set_accuracy_level(r.accuracy_level);
  p.set_int4_format(r.int4_format == core::Int4Format::kQdq ? v1::INT4_FORMAT_QDQ
                                                            : v1::INT4_FORMAT_MATMULNBITS);
  p.set_algorithm(r.algorithm == core::QuantAlgorithm::kSearch ? v1::QUANT_ALGORITHM_SEARCH
                                                               : v1::QUANT_ALGORITHM_RTN);
  p.set_int8_mode(r.int8_mode == core::Int8Mode::kDynamic ? v1::INT8_MODE_DYNAMIC
                                                          : v1::INT8_MODE_WEIGHT_ONLY);
  p.set_int8_weight_type(r.int8_weight_type == core::Int8WeightType::kQUInt8
                             ? v1::INT8_WEIGHT_TYPE_QUINT8
                             : v1::INT8_WEIGHT_TYPE_QINT8);
  p.set_per_channel(r.per_channel);
  p.set_reduce_range(r.reduce_range);
  for (const auto& s : r.op_types) p.add_op_types(s);
  for (const auto& s : r.exclude_nodes) p.add_exclude_nodes(s);
  for (const auto& s : r.exclude_regex) p.add_exclude_regex(s);
  p.set_keep_embeddings(r.keep_embeddings);
  p.set_lm_head(LmHeadToProto(r.lm_head));
  p.set_min_tensor_elements(r.min_tensor_elements);
  p.set_gguf_type(r.gguf_type);
  p.set_leave_output_tensor(r.leave_output_tensor);
  p.set_output_tensor_type(r.output_tensor_type);
  p.set_token_embedding_type(r.token_embedding_type);
  p.set_pure(r.pure);
  p.set_allow_requantize(r.allow_requantize);
  p.set_threads(r.threads);
  return p;
}

}  // namespace quantd::quantctl
