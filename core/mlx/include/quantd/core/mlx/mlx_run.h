// RunCheckpointMlx: a Hugging Face checkpoint folder to an Apple MLX folder
// (mlx_lm.convert layout, see mlx_folder_writer.h) as core::Run does it for
// a recipe of format mlx: the checkpoint reader's tensors in, the recipe's
// bits / group_size / mlx_recipe / keep_embeddings / exclusions as the plan's
// options, config.json passed as its file text (its key order is kept).
//
// All or nothing: the folder is written into a staging folder beside
// `output_dir` ("<output_dir>.partial-XXXXXX") and renamed into place once
// complete, so on any error or cancellation neither `output_dir` nor the
// staging folder is left. `output_dir` must be absent or an empty folder
// (FailedPrecondition otherwise, checked before any work).
//
// Thread safety: reentrant; see WriteMlxFolder for how ctx's threads are
// used.
#ifndef QUANTD_CORE_MLX_MLX_RUN_H_
#define QUANTD_CORE_MLX_MLX_RUN_H_

#include <string>

#include "absl/status/statusor.h"
#include "quantd/core/recipe.h"
#include "quantd/core/report.h"
#include "quantd/core/run_context.h"

namespace quantd::core::mlx {

// Report: format "mlx", precision MlxPrecisionName(recipe), one TensorReport
// per tensor written (SQNR and errors for the quantized ones), output_files
// the paths written (output_dir/<name>). recipe, input bytes and seconds are
// left to core::Run.
// REQUIRES: ValidateRecipe(recipe) is OK and recipe.format is kMlx.
absl::StatusOr<Report> RunCheckpointMlx(const Recipe& recipe, const std::string& checkpoint_dir,
                                        const std::string& output_dir, const RunContext& ctx = {});

}  // namespace quantd::core::mlx

#endif  // QUANTD_CORE_MLX_MLX_RUN_H_
