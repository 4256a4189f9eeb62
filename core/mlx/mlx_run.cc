#include "quantd/core/mlx/mlx_run.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/errno_status.h"
#include "quantd/core/base/read_file.h"
#include "quantd/core/base/staging_folder.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/checkpoint/checkpoint.h"
#include "quantd/core/checkpoint/safetensors.h"
#include "quantd/core/mlx/mlx_folder_writer.h"
#include "quantd/core/mlx/mlx_quant_plan.h"

namespace quantd::core::mlx {
namespace {

namespace fs = std::filesystem;

// A small JSON file's text, as it is ("" when absent and !required).
absl::StatusOr<std::string> ReadJsonText(const fs::path& path, bool required) {
  std::error_code ec;
  if (!required && !fs::exists(path, ec)) return std::string();
  return ReadFileUpTo(path.string(), checkpoint::kMaxCheckpointJsonBytes, "JSON");
}

}  // namespace

absl::StatusOr<Report> RunCheckpointMlx(const Recipe& recipe, const std::string& checkpoint_dir,
                                        const std::string& output_dir_arg, const RunContext& ctx) {
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<StagingFolder> staging,
                          StagingFolder::Create(output_dir_arg, "an MLX output"));
  MlxFolderOptions options;
  options.quant.bits = MlxBits(recipe);
  options.quant.group_size = recipe.group_size;
  QUANTD_ASSIGN_OR_RETURN(options.quant.recipe, ParseMlxMixedRecipe(recipe.mlx_recipe));
  options.quant.keep_embeddings = KeepEmbeddings(recipe);
  options.quant.exclude_names = recipe.exclude_nodes;
  options.quant.exclude_regex = recipe.exclude_regex;
  options.compute_quality = recipe.report_level != ReportLevel::kNone;
  options.quality_level = recipe.report_level == ReportLevel::kFull ? quant::QualityLevel::kFull
                                                                    : quant::QualityLevel::kSampled;

  ctx.Report(Progress{"load", 0, 0, 0, 0});
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<checkpoint::Checkpoint> ckpt,
                          checkpoint::Checkpoint::Open(checkpoint_dir));
  // The text, not the parsed config: the writer keeps the input's key order.
  QUANTD_ASSIGN_OR_RETURN(std::string config_json,
                          ReadJsonText(fs::path(checkpoint_dir) / "config.json", true));
  QUANTD_ASSIGN_OR_RETURN(std::string generation_json,
                          ReadJsonText(fs::path(checkpoint_dir) / "generation_config.json", false));
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());

  std::vector<MlxSourceTensor> sources;
  sources.reserve(ckpt->tensors().size());
  for (const checkpoint::Checkpoint::TensorRef& ref : ckpt->tensors()) {
    const checkpoint::SafetensorsFile* shard = ref.shard;
    const checkpoint::SafetensorsTensor* tensor = ref.tensor;
    sources.push_back({tensor->name, std::string(checkpoint::DtypeName(tensor->dtype)),
                       tensor->shape,
                       [shard, tensor]() -> absl::StatusOr<absl::Span<const uint8_t>> {
                         return shard->Data(*tensor);
                       },
                       [shard, tensor]() { shard->Release(*tensor); }});
  }

  QUANTD_ASSIGN_OR_RETURN(
      MlxFolderResult result,
      WriteMlxFolder(sources, config_json, generation_json, ListMlxSideFiles(checkpoint_dir),
                     staging->path(), options, ctx));
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
  QUANTD_RETURN_IF_ERROR(staging->Publish());
  const fs::path out_path(staging->output());
  std::error_code ec;

  Report report;
  report.format = FormatName(ModelFormat::kMlx);
  report.precision = MlxPrecisionName(recipe);
  report.tensors_total = ckpt->tensors().size();
  report.tensors_converted = result.tensors_quantized;
  for (const TensorReport& t : result.tensors) {
    report.bytes_before += t.bytes_before;
    report.bytes_after += t.bytes_after;
    if (t.dtype_after.rfind("MLX_AFFINE_", 0) == 0) {  // a quantized weight
      int64_t n = 1;
      for (int64_t d : t.shape) n *= d;
      report.weights_quantized += static_cast<uint64_t>(n);
    }
  }
  for (const std::string& f : result.files) {
    const fs::path p = out_path / f;
    report.output_files.push_back(p.string());
    report.output_file_bytes += fs::file_size(p, ec);
  }
  if (report.tensors_total > result.tensors.size()) {
    report.notes.push_back(absl::StrCat(
        report.tensors_total - result.tensors.size(),
        " tensor(s) not written, as mlx-lm drops them on load (rotary inv_freq, a tied "
        "lm_head)"));
  }
  report.tensors = std::move(result.tensors);
  return report;
}

}  // namespace quantd::core::mlx
