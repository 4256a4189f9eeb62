#include "quantd/server/operations.h"

#include "absl/strings/str_cat.h"
#include "quantd/core/base/sha256.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/server/ids.h"
#include "quantd/server/translate.h"

namespace quantd::server {

namespace {

// A recipe in a log line: its SHA-256 and the first bytes of its canonical
// text (a recipe may carry thousands of patterns; the job has it whole).
std::string RecipeLogSummary(const core::Recipe& recipe) {
  const std::string canonical = core::CanonicalRecipe(recipe);
  constexpr size_t kShown = 160;
  return absl::StrCat("sha256:", core::Sha256Hex(canonical), " ",
                      canonical.size() <= kShown ? canonical
                                                 : absl::StrCat(canonical.substr(0, kShown), "...(",
                                                                canonical.size(), " bytes)"));
}

}  // namespace

std::string DedupKey(const std::string& model_id, const std::string& canonical_recipe,
                     const std::string& version) {
  return core::Sha256Hex(absl::StrCat(model_id, "\n", canonical_recipe, "\nquantd ", version));
}

absl::StatusOr<v1::Job> SubmitJob(const ServiceContext& ctx, const v1::SubmitJobRequest& req) {
  if (ctx.draining != nullptr && ctx.draining->load()) {
    return absl::UnavailableError("the server is shutting down; retry on another server");
  }
  QUANTD_RETURN_IF_ERROR(ModelHex(req.model_id()).status());
  if (req.priority() < -100 || req.priority() > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("priority ", req.priority(), " is out of range; use -100 to 100"));
  }
  if (req.idempotency_key().size() > 128) {
    return absl::InvalidArgumentError("idempotency_key must be at most 128 characters");
  }
  if (req.labels_size() > 32) return absl::InvalidArgumentError("at most 32 labels");
  for (const auto& [k, v] : req.labels()) {
    if (k.empty() || k.size() > 63 || v.size() > 256) {
      return absl::InvalidArgumentError(
          "labels: keys must have 1-63 characters and values at most 256");
    }
  }
  QUANTD_ASSIGN_OR_RETURN(v1::Model model, ctx.blobs->GetModel(req.model_id()));
  QUANTD_ASSIGN_OR_RETURN(core::Recipe recipe, RecipeFromProto(req.recipe()));
  // A checkpoint's name is part of the output (general.name): the job
  // records the one it uses, so the dedup key below tells names apart.
  if (model.format() == v1::MODEL_FORMAT_HF_CHECKPOINT && recipe.model_name.empty()) {
    recipe.model_name = model.model_name();
  }
  QUANTD_RETURN_IF_ERROR(ValidateRecipeForModel(recipe, model.format()));
  if (ctx.pool->queued() >= ctx.max_queued_jobs) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the queue is full (", ctx.max_queued_jobs, " jobs); retry later"));
  }
  v1::Job job;
  job.set_model_id(req.model_id());
  *job.mutable_recipe() = RecipeToProto(recipe);
  job.set_priority(req.priority());
  *job.mutable_labels() = req.labels();
  job.set_idempotency_key(req.idempotency_key());
  job.set_quantd_version(ctx.version);
  job.set_dedup_key(DedupKey(req.model_id(), core::CanonicalRecipe(recipe), ctx.version));
  QUANTD_ASSIGN_OR_RETURN(JobStore::CreateResult created, ctx.jobs->Create(std::move(job)));
  if (created.created) {
    const auto [format, precision] = JobMetricLabels(created.job.recipe());
    ctx.metrics->JobSubmitted(format, precision);
    // Logged before a worker can see it, so "job submitted" always comes
    // before that job's "job started".
    ctx.logger->Info("job submitted", {{"job_id", created.job.job_id()},
                                       {"model_id", created.job.model_id()},
                                       {"recipe", RecipeLogSummary(recipe)},
                                       {"priority", absl::StrCat(created.job.priority())}});
    ctx.pool->Enqueue(created.job);
  } else {
    ctx.logger->Info("job deduplicated",
                     {{"job_id", created.job.job_id()}, {"model_id", created.job.model_id()}});
  }
  return created.job;
}

absl::Status DeleteModel(const ServiceContext& ctx, const std::string& model_id) {
  QUANTD_RETURN_IF_ERROR(ModelHex(model_id).status());
  if (ctx.jobs->HasActiveJobForModel(model_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", model_id, " is used by a queued or running job; cancel it or wait"));
  }
  QUANTD_RETURN_IF_ERROR(ctx.blobs->DeleteModel(model_id));
  ctx.logger->Info("model deleted", {{"model_id", model_id}});
  return absl::OkStatus();
}

absl::Status DeleteJob(const ServiceContext& ctx, const std::string& job_id) {
  QUANTD_RETURN_IF_ERROR(ValidateJobId(job_id));
  // Journal first: once the record is gone the artifact is an orphan that
  // the next start also removes.
  QUANTD_RETURN_IF_ERROR(ctx.jobs->Delete(job_id));
  QUANTD_RETURN_IF_ERROR(ctx.blobs->DeleteArtifact(job_id));
  ctx.logger->Info("job deleted", {{"job_id", job_id}});
  return absl::OkStatus();
}

}  // namespace quantd::server
