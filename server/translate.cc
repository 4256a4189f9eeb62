#include "quantd/server/translate.h"

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/recipe_flags.h"
#include "quantd/core/run.h"

namespace quantd::server {
namespace {

using api::FormatFromProto;

}  // namespace

absl::Status ValidateRecipeForModel(const core::Recipe& recipe, v1::ModelFormat format) {
  absl::Status st = core::ValidateRecipe(recipe);
  if (!st.ok()) return absl::InvalidArgumentError(st.message());
  QUANTD_RETURN_IF_ERROR(core::CheckDryRun(recipe, format == v1::MODEL_FORMAT_HF_CHECKPOINT));
  if (format == v1::MODEL_FORMAT_HF_CHECKPOINT) {
    if (recipe.model_name.empty()) {
      return absl::InvalidArgumentError(
          "the model is a Hugging Face checkpoint: set recipe.model_name (general.name is "
          "derived from it)");
    }
    if (core::CheckpointOutputIsFolder(recipe) || !recipe.gguf_type.empty()) {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        "the model is a Hugging Face checkpoint, which converts to GGUF, an ONNX GenAI folder or "
        "MLX: set recipe.gguf_type (e.g. F16, Q8_0), recipe.precision (fp32, fp16, int8, int4) "
        "for ONNX, or recipe.format MLX");
  }
  if (recipe.format == core::ModelFormat::kMlx) {
    return absl::InvalidArgumentError(
        "format mlx converts a Hugging Face checkpoint; this model is not one");
  }
  if (!recipe.model_name.empty()) {
    return absl::InvalidArgumentError(
        "recipe.model_name applies to Hugging Face checkpoints; this model is not one");
  }
  const core::ModelFormat model = FormatFromProto(format);
  if (model == core::ModelFormat::kAuto) return absl::OkStatus();
  if (recipe.format != core::ModelFormat::kAuto && recipe.format != model) {
    return absl::InvalidArgumentError(absl::StrCat("the recipe is for ",
                                                   core::FormatName(recipe.format),
                                                   " but the model is ", core::FormatName(model)));
  }
  if (model == core::ModelFormat::kGguf && recipe.gguf_type.empty()) {
    return absl::InvalidArgumentError(
        "the model is GGUF: set recipe.gguf_type (e.g. Q4_K_M, Q8_0, F16)");
  }
  if (model == core::ModelFormat::kOnnx && !recipe.gguf_type.empty()) {
    return absl::InvalidArgumentError("recipe.gguf_type needs a GGUF model; this model is ONNX");
  }
  if (model == core::ModelFormat::kOnnx &&
      (!recipe.imatrix.empty() || !recipe.tensor_types.empty() || !recipe.prune_layers.empty() ||
       recipe.keep_split || recipe.split_max_bytes > 0)) {
    return absl::InvalidArgumentError(
        "recipe.imatrix, tensor_types, prune_layers, keep_split and split_max_bytes need a GGUF "
        "model; this model is ONNX");
  }
  if (model == core::ModelFormat::kOnnx && recipe.precision == core::Precision::kUnspecified) {
    return absl::InvalidArgumentError(
        "the model is ONNX: set recipe.precision (FP32, FP16, INT8, INT4) or a preset");
  }
  return absl::OkStatus();
}

v1::Report ReportToProto(const core::Report& r) {
  v1::Report p;
  p.set_format(r.format);
  p.set_precision(r.precision);
  p.set_recipe(r.recipe);
  p.set_tensors_total(r.tensors_total);
  p.set_tensors_converted(r.tensors_converted);
  p.set_bytes_before(r.bytes_before);
  p.set_bytes_after(r.bytes_after);
  p.set_input_file_bytes(r.input_file_bytes);
  p.set_output_file_bytes(r.output_file_bytes);
  p.set_weights_quantized(r.weights_quantized);
  p.set_values_clamped(r.values_clamped);
  p.set_values_flushed(r.values_flushed);
  p.set_casts_inserted(r.casts_inserted);
  p.set_seconds(r.seconds);
  for (const auto& f : r.output_files) {
    p.add_output_files(std::filesystem::path(f).filename().string());
  }
  for (const auto& n : r.notes) p.add_notes(n);
  for (const auto& t : r.tensors) {
    v1::TensorReport* pt = p.add_tensors();
    pt->set_name(t.name);
    for (int64_t d : t.shape) pt->add_shape(d);
    pt->set_dtype_before(t.dtype_before);
    pt->set_dtype_after(t.dtype_after);
    pt->set_bytes_before(t.bytes_before);
    pt->set_bytes_after(t.bytes_after);
    if (t.sqnr_db) pt->set_sqnr_db(*t.sqnr_db);
    if (t.rel_l2_error) pt->set_rel_l2_error(*t.rel_l2_error);
    if (t.max_abs_error) pt->set_max_abs_error(*t.max_abs_error);
    if (t.rel_output_error) pt->set_rel_output_error(*t.rel_output_error);
    pt->set_values_clamped(t.values_clamped);
    pt->set_values_flushed(t.values_flushed);
  }
  for (const auto& k : r.kept_fp32) {
    v1::KeptFp32* pk = p.add_kept_fp32();
    pk->set_node(k.node);
    pk->set_op(k.op);
    pk->set_input(k.input);
    pk->set_max_abs(k.max_abs);
    pk->set_reason(k.reason);
  }
  for (const auto& e : r.plan) {
    v1::PlanEntry* pe = p.add_plan();
    pe->set_name(e.name);
    pe->set_source_name(e.source_name);
    for (int64_t d : e.shape) pe->add_shape(d);
    pe->set_type_before(e.type_before);
    pe->set_type_after(e.type_after);
    pe->set_bytes_after(e.bytes_after);
    pe->set_importance(e.importance);
    pe->set_rule(e.rule);
    pe->set_split(e.split);
  }
  p.set_dry_run(r.dry_run);
  return p;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // Messages travel as metadata (8 KiB by default): never let one carry a
  // client's huge input back; what matters is at the start.
  constexpr size_t kMaxMessageBytes = 1024;
  absl::string_view message = status.message();
  std::string text =
      message.size() <= kMaxMessageBytes
          ? std::string(message)
          : absl::StrCat(message.substr(0, kMaxMessageBytes), "... (", message.size(), " bytes)");
  // absl::StatusCode and grpc::StatusCode share the canonical numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::move(text));
}

std::string StatusCodeName(absl::StatusCode code) { return absl::StatusCodeToString(code); }

std::string FailureReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return "invalid_model";
    case absl::StatusCode::kUnimplemented:
      return "unsupported";
    case absl::StatusCode::kDataLoss:
      return "data_loss";
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kResourceExhausted:
      return "resource_exhausted";
    case absl::StatusCode::kFailedPrecondition:
      return "failed_precondition";
    default:
      break;
  }
  return "internal";
}

std::pair<std::string, std::string> JobMetricLabels(const v1::Recipe& recipe) {
  if (recipe.format() == v1::MODEL_FORMAT_MLX) {
    absl::StatusOr<core::Recipe> r = RecipeFromProto(recipe);
    return {"mlx", r.ok() ? core::MlxPrecisionName(*r) : "other"};
  }
  if (!recipe.gguf_type().empty()) {
    return {"gguf", absl::AsciiStrToLower(recipe.gguf_type())};
  }
  switch (recipe.precision()) {
    case v1::PRECISION_FP32:
      return {"onnx", "fp32"};
    case v1::PRECISION_FP16:
      return {"onnx", "fp16"};
    case v1::PRECISION_INT8:
      return {"onnx", "int8"};
    case v1::PRECISION_INT4:
      return {"onnx", "int4"};
    default:
      break;
  }
  return {"onnx", "unspecified"};
}

}  // namespace quantd::server
