// Client::Watch (a job's events until it is final, reattaching after a
// restarting server) and Client::Quantize (upload + submit + watch +
// download).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_internal.h"
#include "quantd/client/client.h"

namespace quantd::client {

using internal::Interrupted;
using internal::Retryable;

absl::StatusOr<v1::Job> Client::Watch(const std::string& job_id,
                                      const std::function<void(const v1::JobEvent&)>& on_event,
                                      absl::Duration timeout) {
  const absl::Time deadline =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  absl::Duration backoff = options_.retry_backoff;
  absl::Status last;
  int failures = 0;
  const uint64_t epoch = Epoch();
  while (true) {
    grpc::ClientContext ctx;
    PrepareContext(&ctx, false);
    if (deadline != absl::InfiniteFuture()) ctx.set_deadline(absl::ToChronoTime(deadline));
    ActiveCall active(this, &ctx, epoch);
    v1::WatchJobRequest req;
    req.set_job_id(job_id);
    auto reader = stub_->WatchJob(&ctx, req);
    v1::JobEvent event;
    bool got_any = false;
    while (reader->Read(&event)) {
      got_any = true;
      if (on_event) on_event(event);
      if (event.final()) {
        ctx.TryCancel();
        reader->Finish();
        return event.job();
      }
    }
    last = FromGrpcStatus(reader->Finish());
    if (Epoch() != epoch) return Interrupted();
    if (absl::IsDeadlineExceeded(last) || absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("job ", job_id, " did not finish in time: ", last.message()));
    }
    if (last.ok() || Retryable(last.code())) {
      failures = got_any ? 0 : failures + 1;
      const int max_failures = options_.watch_max_failures > 0
                                   ? options_.watch_max_failures
                                   : std::max(1, options_.max_attempts) * 4;
      if (failures >= max_failures) return last;
      if (!SleepUnlessCancelled(backoff, epoch)) return Interrupted();
      backoff = std::min(backoff * 2, absl::Seconds(2));
      continue;
    }
    return last;
  }
}

absl::StatusOr<QuantizeResult> Client::Quantize(const std::vector<std::string>& paths,
                                                const v1::Recipe& recipe,
                                                const std::string& dest_dir,
                                                const QuantizeOptions& options) {
  QuantizeResult result;
  UploadOptions upload_options;
  upload_options.model_name = recipe.model_name();  // a checkpoint's folder name
  auto upload = Upload(paths, upload_options);
  if (!upload.ok()) return upload.status();
  result.model = upload->model;
  v1::SubmitJobRequest req;
  req.set_model_id(result.model.model_id());
  *req.mutable_recipe() = recipe;
  req.set_priority(options.priority);
  for (const auto& [k, v] : options.labels) (*req.mutable_labels())[k] = v;
  req.set_idempotency_key(options.idempotency_key);
  auto job = Submit(req);
  if (!job.ok()) return job.status();
  auto final_job = Watch(job->job_id(), options.on_event);
  if (!final_job.ok()) return final_job.status();
  result.job = *std::move(final_job);
  if (result.job.state() != v1::JOB_STATE_SUCCEEDED) {
    absl::StatusCode code = absl::StatusCode::kUnknown;
    for (int c = 0; c <= 16; ++c) {
      if (absl::StatusCodeToString(static_cast<absl::StatusCode>(c)) == result.job.error().code()) {
        code = static_cast<absl::StatusCode>(c);
      }
    }
    return absl::Status(
        code, absl::StrCat("job ", result.job.job_id(), " ", v1::JobState_Name(result.job.state()),
                           ": ", result.job.error().message()));
  }
  if (result.job.report().dry_run()) return result;  // a plan: nothing to download
  auto download = Download(result.job.job_id(), dest_dir);
  if (!download.ok()) return download.status();
  result.download = *std::move(download);
  return result;
}

}  // namespace quantd::client
