#include "quantd/server/job_runner.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/run.h"
#include "quantd/server/translate.h"

namespace quantd::server {

absl::StatusOr<JobOutcome> CoreJobRunner::Run(const v1::Job& job, const core::RunContext& ctx) {
  auto model = blobs_->GetModel(job.model_id());
  if (!model.ok()) {
    if (absl::IsNotFound(model.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model ", job.model_id(), " was deleted before the job ran; upload it again"));
    }
    return model.status();
  }
  QUANTD_ASSIGN_OR_RETURN(std::string input, blobs_->ModelInputPath(job.model_id()));
  QUANTD_ASSIGN_OR_RETURN(core::Recipe recipe, RecipeFromProto(job.recipe()));
  QUANTD_ASSIGN_OR_RETURN(std::string work, blobs_->CreateWorkDir(job.job_id()));
  std::string output = absl::StrCat(work, "/", model->files(0).name());
  std::string input_dir = std::filesystem::path(input).parent_path().string() + "/";
  const bool mlx = recipe.format == core::ModelFormat::kMlx;
  if (mlx) {
    // An MLX folder is made from a checkpoint folder: the model's own folder
    // (its files under their upload names, config.json among them). The
    // output folder is the (empty) work folder itself, whose files become
    // the artifact.
    input = std::filesystem::path(input).parent_path().string();
    output = work;
  }

  absl::StatusOr<core::Report> report = core::Run(recipe, input, output, ctx);
  if (!report.ok()) {
    blobs_->RemoveWorkDir(job.job_id());
    // The message is for the client: name its files, not the server's paths.
    std::string message(report.status().message());
    message = absl::StrReplaceAll(message, {{input_dir, ""}, {work + "/", ""}});
    return absl::Status(report.status().code(), message);
  }
  if (ctx.cancelled()) {
    blobs_->RemoveWorkDir(job.job_id());
    return absl::CancelledError("cancelled");
  }
  ctx.Report(core::Progress{"store", 0, 0, 0, 0});
  JobOutcome outcome;
  outcome.report = ReportToProto(*report);
  std::vector<std::string> names(outcome.report.output_files().begin(),
                                 outcome.report.output_files().end());
  auto artifact = blobs_->CommitArtifact(job.job_id(), names);
  if (!artifact.ok()) {
    blobs_->RemoveWorkDir(job.job_id());
    return artifact.status();
  }
  outcome.artifact = *std::move(artifact);
  outcome.artifact.set_folder(mlx);
  return outcome;
}

}  // namespace quantd::server
