#include "quantd/core/run.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/populate.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/checkpoint/checkpoint.h"
#include "quantd/core/checkpoint/checkpoint_gguf.h"
#include "quantd/core/genai/genai_run.h"
#include "quantd/core/gguf/gguf_mix.h"
#include "quantd/core/gguf/gguf_run.h"
#include "quantd/core/mlx/mlx_run.h"
#include "quantd/core/onnx/float_pass.h"
#include "quantd/core/onnx/onnx_model.h"
#include "quantd/core/onnx/quantize_pass.h"

namespace quantd::core {
namespace fs = std::filesystem;

absl::StatusOr<ModelFormat> DetectFormat(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  char magic[4] = {};
  size_t n = std::fread(magic, 1, 4, f);
  std::fclose(f);
  if (n == 4 && magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' && magic[3] == 'F') {
    return ModelFormat::kGguf;
  }
  return ModelFormat::kOnnx;
}

namespace {

SaveOptions::ExternalData ToSaveMode(ExternalDataMode m) {
  switch (m) {
    case ExternalDataMode::kAlways:
      return SaveOptions::ExternalData::kAlways;
    case ExternalDataMode::kNever:
      return SaveOptions::ExternalData::kNever;
    case ExternalDataMode::kAuto:
      break;
  }
  return SaveOptions::ExternalData::kAuto;
}

absl::StatusOr<Report> RunOnnx(const Recipe& recipe, const std::string& input_path,
                               const std::string& output_path, const RunContext& ctx) {
  ctx.Report(Progress{"load", 0, 0, 0, 0});
  QUANTD_ASSIGN_OR_RETURN(auto model, OnnxModel::Load(input_path));
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
  Report report;
  report.format = "onnx";
  report.notes = model->notes();
  report.precision = PrecisionName(recipe.precision);
  switch (recipe.precision) {
    case Precision::kFp16:
    case Precision::kFp32:
      QUANTD_RETURN_IF_ERROR(ConvertFloatPrecision(model.get(), recipe, &report, ctx));
      break;
    case Precision::kInt4:
    case Precision::kInt8:
      QUANTD_RETURN_IF_ERROR(QuantizeOnnxWeights(model.get(), recipe, &report, ctx));
      break;
    case Precision::kUnspecified:
      return absl::InvalidArgumentError("ONNX models need precision fp32, fp16, int8 or int4");
  }
  SaveOptions options;
  options.external_data = ToSaveMode(recipe.external_data);
  QUANTD_ASSIGN_OR_RETURN(SaveResult saved, model->Save(output_path, options, ctx));
  report.output_files = saved.files;
  report.output_file_bytes = saved.bytes;
  report.notes.insert(report.notes.end(), saved.notes.begin(), saved.notes.end());
  return report;
}

uint64_t InputBytes(const std::string& path, ModelFormat format) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {  // a checkpoint folder: every file in it
    uint64_t total = 0;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      if (entry.is_regular_file(ec)) total += entry.file_size(ec);
    }
    return total;
  }
  uint64_t total = fs::file_size(path, ec);
  if (ec) return 0;
  if (format == ModelFormat::kOnnx) {
    // Count sibling external data named after the model (the common layout).
    for (const char* suffix : {".data", "_data"}) {
      uint64_t n = fs::file_size(path + suffix, ec);
      if (!ec) total += n;
    }
  }
  return total;
}

}  // namespace

bool CheckpointToOnnx(const Recipe& recipe) {
  return recipe.format == ModelFormat::kOnnx ||
         (recipe.format == ModelFormat::kAuto && recipe.gguf_type.empty() &&
          recipe.precision != Precision::kUnspecified);
}

bool CheckpointOutputIsFolder(const Recipe& recipe) {
  return recipe.format == ModelFormat::kMlx || CheckpointToOnnx(recipe);
}

absl::Status CheckDryRun(const Recipe& recipe, bool checkpoint_input) {
  if (!recipe.dry_run) return absl::OkStatus();
  constexpr char kPlanned[] =
      "; a dry run plans GGUF outputs of the llama-quantize path only (a GGUF input, or a "
      "checkpoint folder with a llama-quantize gguf_type such as Q4_K_M)";
  if (checkpoint_input) {
    if (CheckpointOutputIsFolder(recipe)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dry_run: this recipe writes an ",
          recipe.format == ModelFormat::kMlx ? "MLX" : "ONNX Runtime GenAI", " folder", kPlanned));
    }
    if (recipe.gguf_type.empty()) return absl::OkStatus();  // refused later, with its reason
    QUANTD_ASSIGN_OR_RETURN(gguf::FileType ftype, gguf::ParseFileType(recipe.gguf_type));
    if (checkpoint::IsConverterOuttype(ftype)) {
      return absl::InvalidArgumentError(absl::StrCat("dry_run: gguf_type ", recipe.gguf_type,
                                                     " is written by the checkpoint converter",
                                                     kPlanned));
    }
    return absl::OkStatus();
  }
  if (recipe.gguf_type.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dry_run: this is an ONNX conversion", kPlanned));
  }
  return absl::OkStatus();
}

absl::StatusOr<Report> Run(const Recipe& recipe, const std::string& input_path,
                           const std::string& output_path, const RunContext& ctx) {
  auto start = std::chrono::steady_clock::now();
  // The job's large buffers kept for reuse (populate.h) go with it.
  absl::Cleanup release_buffers = [] { ReleaseRecycledBuffers(); };
  QUANTD_RETURN_IF_ERROR(ValidateRecipe(recipe));
  if (checkpoint::IsCheckpointDir(input_path)) {
    // A Hugging Face checkpoint folder: written as GGUF, or as an MLX or
    // ONNX Runtime GenAI folder.
    QUANTD_RETURN_IF_ERROR(CheckDryRun(recipe, /*checkpoint_input=*/true));
    Report report;
    if (CheckpointToOnnx(recipe)) {
      QUANTD_ASSIGN_OR_RETURN(report,
                              genai::RunCheckpointOnnx(recipe, input_path, output_path, ctx));
    } else if (recipe.format == ModelFormat::kMlx) {
      QUANTD_ASSIGN_OR_RETURN(report, mlx::RunCheckpointMlx(recipe, input_path, output_path, ctx));
    } else {
      QUANTD_ASSIGN_OR_RETURN(report,
                              checkpoint::RunCheckpointGguf(recipe, input_path, output_path, ctx));
    }
    report.recipe = CanonicalRecipe(recipe);
    report.input_file_bytes = InputBytes(input_path, ModelFormat::kAuto);
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  }
  if (!recipe.model_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_name applies to a Hugging Face checkpoint folder (it names general.name); ",
        input_path, " is not one"));
  }
  if (recipe.format == ModelFormat::kMlx) {
    return absl::InvalidArgumentError(
        "format mlx converts a Hugging Face checkpoint folder (config.json + safetensors); this "
        "input is not one");
  }
  if (std::error_code ec; fs::is_directory(input_path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        input_path,
        " is a folder without config.json; a model folder must be a Hugging Face checkpoint"));
  }
  QUANTD_ASSIGN_OR_RETURN(ModelFormat detected, DetectFormat(input_path));
  if (recipe.format != ModelFormat::kAuto && recipe.format != detected) {
    return absl::InvalidArgumentError(absl::StrCat("the recipe is for ", FormatName(recipe.format),
                                                   " but the input is ", FormatName(detected)));
  }
  QUANTD_RETURN_IF_ERROR(CheckDryRun(recipe, /*checkpoint_input=*/false));
  Report report;
  if (detected == ModelFormat::kGguf) {
    if (recipe.gguf_type.empty()) {
      return absl::InvalidArgumentError("GGUF input needs gguf_type (e.g. Q4_K_M, Q8_0, F16)");
    }
    QUANTD_ASSIGN_OR_RETURN(report, RunGguf(recipe, input_path, output_path, ctx));
  } else {
    if (!recipe.gguf_type.empty()) {
      return absl::InvalidArgumentError("gguf_type needs a GGUF input; this input is ONNX");
    }
    QUANTD_ASSIGN_OR_RETURN(report, RunOnnx(recipe, input_path, output_path, ctx));
  }
  report.recipe = CanonicalRecipe(recipe);
  report.input_file_bytes = InputBytes(input_path, detected);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace quantd::core
