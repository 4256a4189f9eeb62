#include "quantd/server/job_runner.h"

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
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
  QUANTD_ASSIGN_OR_RETURN(core::Recipe recipe, RecipeFromProto(job.recipe()));
  const std::string work_name = WorkName(job.job_id(), job.attempts());
  std::string input;
  std::string output_name = model->files(0).name();
  const bool checkpoint = model->format() == v1::MODEL_FORMAT_HF_CHECKPOINT;
  // MLX and ONNX GenAI outputs of a checkpoint are folders.
  const bool folder = checkpoint && core::CheckpointOutputIsFolder(recipe);
  if (checkpoint) {
    // The core reads a folder, and the converter's general.* keys come from
    // its name: link the stored files into a folder named as the job's
    // recipe says (SubmitJob filled it in from the model's name).
    QUANTD_ASSIGN_OR_RETURN(input,
                            blobs_->LinkModelFolder(job.model_id(), work_name, recipe.model_name));
    if (!folder) {
      output_name =
          absl::StrCat(recipe.model_name, "-", absl::AsciiStrToLower(recipe.gguf_type), ".gguf");
    }
  } else {
    QUANTD_ASSIGN_OR_RETURN(input, blobs_->ModelInputPath(job.model_id()));
  }
  // The importance matrix: a file of this model's upload, or the first
  // file of another stored model ("model:<id>"). The core reads a path.
  std::string imatrix_dir;
  if (!recipe.imatrix.empty()) {
    if (absl::StartsWith(recipe.imatrix, "model:")) {
      const std::string id = recipe.imatrix.substr(6);
      auto path = blobs_->ModelInputPath(id);
      if (!path.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "recipe.imatrix names model ", id, ", which is not stored: upload the matrix first"));
      }
      recipe.imatrix = *path;
    } else {
      bool found = false;
      for (int i = 1; i < model->files_size(); ++i)
        found |= model->files(i).name() == recipe.imatrix;
      if (!found) {
        return absl::InvalidArgumentError(absl::StrCat(
            "recipe.imatrix '", recipe.imatrix,
            "' is not one of the model's uploaded files (besides the model itself): upload it "
            "with the model, or on its own and name it model:<model_id>"));
      }
      QUANTD_ASSIGN_OR_RETURN(const std::string model_path, blobs_->ModelInputPath(job.model_id()));
      recipe.imatrix = (std::filesystem::path(model_path).parent_path() / recipe.imatrix).string();
    }
    imatrix_dir = std::filesystem::path(recipe.imatrix).parent_path().string() + "/";
  }
  auto work = blobs_->CreateWorkDir(work_name);
  if (!work.ok()) {
    blobs_->RemoveWorkDir(work_name);
    return work.status();
  }
  // A folder job writes into the (empty) work folder itself, whose files
  // become the artifact.
  const std::string output = folder ? *work : absl::StrCat(*work, "/", output_name);

  // The last tensor counts the conversion reported stay in the job's
  // progress through the store phase and into the final state.
  core::Progress last{"", 0, 0, 0, 0};
  core::RunContext run_ctx = ctx;
  // The core hashes each output file while writing it, so the store phase
  // need not read the files back (pass-through tensors go to the disk with
  // O_DIRECT: reading them back would be disk reads).
  core::OutputDigests written;
  run_ctx.output_digests = &written;
  run_ctx.progress = [&last, &ctx](const core::Progress& p) {
    last = p;
    ctx.Report(p);
  };
  absl::StatusOr<core::Report> report = core::Run(recipe, input, output, run_ctx);
  if (!report.ok()) {
    blobs_->RemoveWorkDir(work_name);
    // The message is for the client: name its files, not the server's paths.
    std::string message(report.status().message());
    const std::string input_dir = std::filesystem::path(input).parent_path().string() + "/";
    message = absl::StrReplaceAll(message, {{input_dir, ""}, {*work + "/", ""}});
    if (!imatrix_dir.empty()) message = absl::StrReplaceAll(message, {{imatrix_dir, ""}});
    return absl::Status(report.status().code(), message);
  }
  if (ctx.cancelled()) {
    blobs_->RemoveWorkDir(work_name);
    return absl::CancelledError("cancelled");
  }
  ctx.Report(core::Progress{"store", last.tensors_done, last.tensors_total, 0, 0});
  JobOutcome outcome;
  outcome.report = ReportToProto(*report);
  if (report->dry_run) {
    // The plan is the result: the report says what the files would be.
    blobs_->RemoveWorkDir(work_name);
    return outcome;
  }
  std::vector<std::string> names(outcome.report.output_files().begin(),
                                 outcome.report.output_files().end());
  auto artifact = blobs_->CommitArtifact(work_name, names, &written);
  blobs_->RemoveWorkDir(work_name);  // the input folder, and work/ on failure
  if (!artifact.ok()) return artifact.status();
  outcome.artifact = *std::move(artifact);
  outcome.artifact.set_folder(folder);
  return outcome;
}

}  // namespace quantd::server
