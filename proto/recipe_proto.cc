#include "quantd/api/recipe_proto.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace quantd::api {

core::ModelFormat FormatFromProto(v1::ModelFormat f) {
  switch (f) {
    case v1::MODEL_FORMAT_ONNX:
      return core::ModelFormat::kOnnx;
    case v1::MODEL_FORMAT_GGUF:
      return core::ModelFormat::kGguf;
    case v1::MODEL_FORMAT_MLX:
      return core::ModelFormat::kMlx;
    default:
      return core::ModelFormat::kAuto;
  }
}

namespace {

v1::ModelFormat FormatToProto(core::ModelFormat f) {
  switch (f) {
    case core::ModelFormat::kOnnx:
      return v1::MODEL_FORMAT_ONNX;
    case core::ModelFormat::kGguf:
      return v1::MODEL_FORMAT_GGUF;
    case core::ModelFormat::kMlx:
      return v1::MODEL_FORMAT_MLX;
    case core::ModelFormat::kAuto:
      break;
  }
  return v1::MODEL_FORMAT_UNSPECIFIED;
}

absl::StatusOr<core::Precision> PrecisionFromProto(v1::Precision p) {
  switch (p) {
    case v1::PRECISION_UNSPECIFIED:
      return core::Precision::kUnspecified;
    case v1::PRECISION_FP32:
      return core::Precision::kFp32;
    case v1::PRECISION_FP16:
      return core::Precision::kFp16;
    case v1::PRECISION_INT8:
      return core::Precision::kInt8;
    case v1::PRECISION_INT4:
      return core::Precision::kInt4;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("recipe.precision: unknown value ", static_cast<int>(p)));
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

template <typename Enum>
absl::StatusOr<Enum> EnumInRange(int v, int max, const char* field) {
  if (v < 0 || v > max) {
    return absl::InvalidArgumentError(absl::StrCat("recipe.", field, ": unknown value ", v));
  }
  return static_cast<Enum>(v);
}

std::vector<std::string> ToVector(const google::protobuf::RepeatedPtrField<std::string>& r) {
  return std::vector<std::string>(r.begin(), r.end());
}

}  // namespace

absl::StatusOr<core::Recipe> RecipeFromProto(const v1::Recipe& p) {
  core::Recipe r;
  if (!p.preset().empty()) {
    absl::StatusOr<const core::Preset*> preset = core::FindPreset(p.preset());
    if (!preset.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("recipe.preset: ", preset.status().message()));
    }
    r = (*preset)->recipe;
  }
  if (p.format() != v1::MODEL_FORMAT_UNSPECIFIED) {
    r.format = FormatFromProto(p.format());
    if (r.format == core::ModelFormat::kAuto) {  // a value this server does not know
      return absl::InvalidArgumentError(
          absl::StrCat("recipe.format: unknown value ", static_cast<int>(p.format())));
    }
  }
  if (p.precision() != v1::PRECISION_UNSPECIFIED) {
    auto prec = PrecisionFromProto(p.precision());
    if (!prec.ok()) return prec.status();
    r.precision = *prec;
  }
  if (p.has_keep_io_types()) r.keep_io_types = p.keep_io_types();
  if (p.has_op_block_list()) r.op_block_list = ToVector(p.op_block_list().values());
  if (p.node_block_list_size() > 0) r.node_block_list = ToVector(p.node_block_list());
  if (p.has_external_data()) {
    auto v = EnumInRange<core::ExternalDataMode>(p.external_data(), 2, "external_data");
    if (!v.ok()) return v.status();
    // proto: AUTO=0, ALWAYS=1, NEVER=2 — same order as the core enum.
    r.external_data = *v;
  }
  if (p.has_block_size()) r.block_size = p.block_size();
  if (p.has_symmetric()) r.symmetric = p.symmetric();
  if (p.has_accuracy_level()) r.accuracy_level = p.accuracy_level();
  if (p.has_int4_format()) {
    auto v = EnumInRange<core::Int4Format>(p.int4_format(), 1, "int4_format");
    if (!v.ok()) return v.status();
    r.int4_format = *v;
  }
  if (p.has_algorithm()) {
    auto v = EnumInRange<core::QuantAlgorithm>(p.algorithm(), 1, "algorithm");
    if (!v.ok()) return v.status();
    r.algorithm = *v;
  }
  if (p.has_int8_mode()) {
    auto v = EnumInRange<core::Int8Mode>(p.int8_mode(), 2, "int8_mode");
    if (!v.ok()) return v.status();
    r.int8_mode = *v;
  }
  if (p.has_int8_weight_type()) {
    auto v = EnumInRange<core::Int8WeightType>(p.int8_weight_type(), 1, "int8_weight_type");
    if (!v.ok()) return v.status();
    r.int8_weight_type = *v;
  }
  if (p.has_per_channel()) r.per_channel = p.per_channel();
  if (p.has_reduce_range()) r.reduce_range = p.reduce_range();
  if (p.op_types_size() > 0) r.op_types = ToVector(p.op_types());
  if (p.exclude_nodes_size() > 0) r.exclude_nodes = ToVector(p.exclude_nodes());
  if (p.exclude_regex_size() > 0) r.exclude_regex = ToVector(p.exclude_regex());
  if (p.has_keep_embeddings()) r.keep_embeddings = p.keep_embeddings();
  if (p.has_lm_head()) {
    auto v = EnumInRange<core::LmHeadMode>(p.lm_head(), 2, "lm_head");
    if (!v.ok()) return v.status();
    r.lm_head = *v;
  }
  if (p.has_min_tensor_elements()) r.min_tensor_elements = p.min_tensor_elements();
  if (p.has_int8_first_layers()) r.int8_first_layers = p.int8_first_layers();
  if (p.has_int8_last_layers()) r.int8_last_layers = p.int8_last_layers();
  if (p.int8_regex_size() > 0) r.int8_regex = ToVector(p.int8_regex());
  if (!p.lm_head_node().empty()) r.lm_head_node = p.lm_head_node();
  if (p.has_int8_embeddings()) r.int8_embeddings = p.int8_embeddings();
  if (p.has_force_fp16()) r.force_fp16 = p.force_fp16();
  if (p.has_embedding_op()) {
    auto v = EnumInRange<core::EmbeddingOp>(p.embedding_op(), 1, "embedding_op");
    if (!v.ok()) return v.status();
    r.embedding_op = *v;
  }
  if (!p.gguf_type().empty()) r.gguf_type = p.gguf_type();
  if (p.has_leave_output_tensor()) r.leave_output_tensor = p.leave_output_tensor();
  if (!p.output_tensor_type().empty()) r.output_tensor_type = p.output_tensor_type();
  if (!p.token_embedding_type().empty()) r.token_embedding_type = p.token_embedding_type();
  if (p.has_pure()) r.pure = p.pure();
  if (p.has_allow_requantize()) r.allow_requantize = p.allow_requantize();
  if (!p.imatrix().empty()) r.imatrix = p.imatrix();
  if (p.imatrix_include_size() > 0) r.imatrix_include = ToVector(p.imatrix_include());
  if (p.imatrix_exclude_size() > 0) r.imatrix_exclude = ToVector(p.imatrix_exclude());
  if (p.tensor_types_size() > 0) r.tensor_types = ToVector(p.tensor_types());
  for (int32_t layer : p.prune_layers()) r.prune_layers.push_back(layer);
  if (p.has_keep_split()) r.keep_split = p.keep_split();
  if (p.has_dry_run()) r.dry_run = p.dry_run();
  if (p.has_split_max_bytes()) r.split_max_bytes = p.split_max_bytes();
  if (p.has_threads()) r.threads = p.threads();
  if (p.has_report_level()) {
    auto v = EnumInRange<core::ReportLevel>(p.report_level(), 2, "report_level");
    if (!v.ok()) return v.status();
    // proto: SUMMARY=0, NONE=1, FULL=2 — same order as the core enum.
    r.report_level = *v;
  }
  if (!p.model_name().empty()) r.model_name = p.model_name();
  if (p.has_bits()) r.bits = p.bits();
  if (p.has_group_size()) r.group_size = p.group_size();
  if (!p.mlx_recipe().empty()) r.mlx_recipe = p.mlx_recipe();
  return r;
}

v1::Recipe RecipeToProto(const core::Recipe& r) {
  v1::Recipe p;
  p.set_preset(r.preset);
  p.set_format(FormatToProto(r.format));
  p.set_precision(PrecisionToProto(r.precision));
  p.set_keep_io_types(r.keep_io_types);
  if (r.op_block_list) {
    for (const auto& s : *r.op_block_list) p.mutable_op_block_list()->add_values(s);
    p.mutable_op_block_list();
  }
  for (const auto& s : r.node_block_list) p.add_node_block_list(s);
  p.set_external_data(static_cast<v1::ExternalData>(r.external_data));
  p.set_block_size(r.block_size);
  p.set_symmetric(r.symmetric);
  if (r.accuracy_level) p.set_accuracy_level(*r.accuracy_level);
  p.set_int4_format(static_cast<v1::Int4Format>(r.int4_format));
  p.set_algorithm(static_cast<v1::QuantAlgorithm>(r.algorithm));
  p.set_int8_mode(static_cast<v1::Int8Mode>(r.int8_mode));
  p.set_int8_weight_type(static_cast<v1::Int8WeightType>(r.int8_weight_type));
  p.set_per_channel(r.per_channel);
  p.set_reduce_range(r.reduce_range);
  for (const auto& s : r.op_types) p.add_op_types(s);
  for (const auto& s : r.exclude_nodes) p.add_exclude_nodes(s);
  for (const auto& s : r.exclude_regex) p.add_exclude_regex(s);
  if (r.keep_embeddings) p.set_keep_embeddings(*r.keep_embeddings);
  if (r.lm_head) p.set_lm_head(static_cast<v1::LmHeadMode>(*r.lm_head));
  p.set_min_tensor_elements(r.min_tensor_elements);
  if (r.int8_first_layers != 0) p.set_int8_first_layers(r.int8_first_layers);
  if (r.int8_last_layers != 0) p.set_int8_last_layers(r.int8_last_layers);
  for (const auto& s : r.int8_regex) p.add_int8_regex(s);
  p.set_lm_head_node(r.lm_head_node);
  if (r.int8_embeddings) p.set_int8_embeddings(true);
  if (r.force_fp16) p.set_force_fp16(true);
  if (r.embedding_op != core::EmbeddingOp::kGather) {
    p.set_embedding_op(static_cast<v1::EmbeddingOp>(r.embedding_op));
  }
  p.set_gguf_type(r.gguf_type);
  p.set_leave_output_tensor(r.leave_output_tensor);
  p.set_output_tensor_type(r.output_tensor_type);
  p.set_token_embedding_type(r.token_embedding_type);
  p.set_pure(r.pure);
  p.set_allow_requantize(r.allow_requantize);
  // GGUF importance matrix and per-tensor control: only when used, so other
  // recipes stay as they were.
  if (!r.imatrix.empty()) p.set_imatrix(r.imatrix);
  for (const auto& s : r.imatrix_include) p.add_imatrix_include(s);
  for (const auto& s : r.imatrix_exclude) p.add_imatrix_exclude(s);
  for (const auto& s : r.tensor_types) p.add_tensor_types(s);
  for (int layer : r.prune_layers) p.add_prune_layers(layer);
  if (r.keep_split) p.set_keep_split(true);
  if (r.dry_run) p.set_dry_run(true);
  if (r.split_max_bytes > 0) p.set_split_max_bytes(r.split_max_bytes);
  p.set_threads(r.threads);
  p.set_report_level(static_cast<v1::ReportLevel>(r.report_level));
  p.set_model_name(r.model_name);
  // Set for MLX recipes only, so the other formats' recipes stay as they were.
  if (r.format == core::ModelFormat::kMlx) {
    if (r.bits != 0) p.set_bits(r.bits);
    p.set_group_size(r.group_size);
    p.set_mlx_recipe(r.mlx_recipe);
  }
  return p;
}

}  // namespace quantd::api
