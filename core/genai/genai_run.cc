#include "quantd/core/genai/genai_run.h"

#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/staging_folder.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/checkpoint/checkpoint.h"
#include "quantd/core/genai/decoder_graph.h"
#include "quantd/core/genai/genai_config.h"
#include "quantd/core/genai/tied_embedding.h"
#include "quantd/core/onnx/float_pass.h"
#include "quantd/core/onnx/onnx_model.h"
#include "quantd/core/onnx/quantize_pass.h"

namespace quantd::core::genai {
namespace fs = std::filesystem;

Recipe GenaiRecipe(const Recipe& recipe) {
  Recipe r = recipe;
  if (!r.accuracy_level) r.accuracy_level = 4;
  if (!r.lm_head) {
    r.lm_head = r.precision == Precision::kInt8 ? LmHeadMode::kInt8 : LmHeadMode::kInt4;
  }
  if (r.precision == Precision::kFp16) r.keep_io_types = false;
  // The model builder's int8 is MatMulNBits bits=8; dynamic stays dynamic.
  if (r.int8_mode == Int8Mode::kWeightOnly) r.int8_mode = Int8Mode::kMatMulNBits;
  return r;
}

absl::StatusOr<Report> RunCheckpointOnnx(const Recipe& recipe_in, const std::string& checkpoint_dir,
                                         const std::string& output_dir, const RunContext& ctx) {
  const Recipe recipe = GenaiRecipe(recipe_in);
  if (recipe.precision == Precision::kUnspecified) {
    return absl::InvalidArgumentError(
        "a checkpoint -> ONNX export needs precision fp32, fp16, int8 or int4");
  }
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<StagingFolder> staging,
                          StagingFolder::Create(output_dir, "an ONNX GenAI output"));
  ctx.Report(Progress{"load", 0, 0, 0, 0});
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<checkpoint::Checkpoint> ckpt,
                          checkpoint::Checkpoint::Open(checkpoint_dir));
  QUANTD_ASSIGN_OR_RETURN(DecoderSpec spec, ReadDecoderSpec(*ckpt));
  QUANTD_ASSIGN_OR_RETURN(nlohmann::ordered_json genai_config,
                          GenaiConfig(ckpt->config(), ckpt->generation_config(), spec));
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<OnnxModel> model,
                          BuildDecoderGraph(*ckpt, spec, staging->path(), ctx));
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());

  Report report;
  report.format = FormatName(ModelFormat::kOnnx);
  report.precision = PrecisionName(recipe.precision);
  switch (recipe.precision) {
    case Precision::kFp32:
      report.tensors_total = model->Tensors().size();
      break;
    case Precision::kFp16:
      QUANTD_RETURN_IF_ERROR(ConvertFloatPrecision(model.get(), recipe, &report, ctx));
      break;
    case Precision::kInt4:
    case Precision::kInt8:
      QUANTD_RETURN_IF_ERROR(QuantizeOnnxWeights(model.get(), recipe, &report, ctx));
      QUANTD_RETURN_IF_ERROR(ShareTiedEmbedding(model.get(), &report));
      break;
    case Precision::kUnspecified:
      break;
  }
  SaveOptions options;
  options.external_data = SaveOptions::ExternalData::kAlways;
  const std::string model_path = (fs::path(staging->path()) / "model.onnx").string();
  QUANTD_ASSIGN_OR_RETURN(SaveResult saved, model->Save(model_path, options, ctx));
  model.reset();
  QUANTD_RETURN_IF_ERROR(
      WriteFileAtomically((fs::path(staging->path()) / "genai_config.json").string(),
                          genai_config.dump(4) + "\n", ctx.output_digests));
  std::vector<std::string> files = {"model.onnx", "model.onnx.data", "genai_config.json"};
  for (const std::string& f : checkpoint::ListTokenizerFiles(checkpoint_dir)) {
    const std::string base = fs::path(f).filename().string();
    QUANTD_RETURN_IF_ERROR(
        CopyFileAtomically(f, (fs::path(staging->path()) / base).string(), ctx.output_digests));
    files.push_back(base);
  }
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
  QUANTD_RETURN_IF_ERROR(staging->Publish());
  std::error_code ec;
  for (const std::string& f : files) {
    const fs::path p = fs::path(staging->output()) / f;
    report.output_files.push_back(p.string());
    report.output_file_bytes += fs::file_size(p, ec);
  }
  return report;
}

}  // namespace quantd::core::genai
