#include "quantd/server/worker_pool.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "quantd/server/translate.h"

namespace quantd::server {

WorkerPool::WorkerPool(int workers, int thread_budget, JobStore* store, JobRunner runner,
                       Clock* clock, Logger* logger, Metrics* metrics)
    : workers_(std::clamp(workers, 1, std::max(thread_budget, 1))),
      thread_budget_(std::max(thread_budget, 1)),
      store_(store),
      runner_(std::move(runner)),
      clock_(clock),
      logger_(logger),
      metrics_(metrics),
      compute_(thread_budget_ - 1) {}

WorkerPool::~WorkerPool() { Shutdown(absl::ZeroDuration()); }

void WorkerPool::UseSharedQueue(JobLeases* leases, std::string owner, absl::Duration lease) {
  leases_ = leases;
  owner_ = std::move(owner);
  lease_ = lease;
}

void WorkerPool::Start() {
  if (leases_ == nullptr) {
    for (const v1::Job& job : store_->Queued()) Enqueue(job);
  }
  absl::MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  if (leases_ != nullptr) {
    worker_threads_ = std::make_unique<core::ThreadPool>(workers_ + 1);
    worker_threads_->Schedule([this] { LeaseLoop(); });
    for (int i = 0; i < workers_; ++i) worker_threads_->Schedule([this] { SharedWorkerLoop(); });
    return;
  }
  worker_threads_ = std::make_unique<core::ThreadPool>(workers_);
  for (int i = 0; i < workers_; ++i) worker_threads_->Schedule([this] { WorkerLoop(); });
}

void WorkerPool::Enqueue(const v1::Job& job) {
  absl::MutexLock lock(&mu_);
  if (leases_ != nullptr) {
    ++wakeups_;
    ++shared_queued_;
    return;
  }
  if (queued_ids_.count(job.job_id()) != 0 || running_.count(job.job_id()) != 0) return;
  queue_.emplace(-job.priority(), job.sequence(), job.job_id());
  queued_ids_.insert(job.job_id());
  if (job.run_alone()) run_alone_ids_.insert(job.job_id());
  ReportGauges();
}

int WorkerPool::queued() {
  absl::MutexLock lock(&mu_);
  if (leases_ != nullptr) return static_cast<int>(shared_queued_);
  return static_cast<int>(queue_.size());
}

int WorkerPool::running() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(running_.size());
}

void WorkerPool::ReportGauges() {
  // Shared queue: the depth of the store's queue (every replica reports the
  // same value), else this server's own queue.
  metrics_->SetJobsQueued(leases_ != nullptr ? shared_queued_
                                             : static_cast<int64_t>(queue_.size()));
  metrics_->SetJobsRunning(static_cast<int64_t>(running_.size()));
  metrics_->SetWorkersBusy(static_cast<int64_t>(running_.size()));
}

absl::StatusOr<v1::Job> WorkerPool::Cancel(const std::string& job_id) {
  {
    absl::MutexLock lock(&mu_);
    auto r = running_.find(job_id);
    if (r != running_.end()) {
      r->second.cancel_requested = true;
      r->second.token->Cancel();
    } else if (queued_ids_.erase(job_id) != 0) {
      run_alone_ids_.erase(job_id);
      for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if (std::get<2>(*it) == job_id) {
          queue_.erase(it);
          break;
        }
      }
      ReportGauges();
    }
  }
  // Not running: a queued job (or one just created and not yet enqueued)
  // ends here; final jobs stay as they are. A running job ends in RunOne.
  const int64_t now = clock_->NowUnixMs();
  auto job = store_->Update(
      job_id,
      [now](v1::Job* j) {
        if (j->state() != v1::JOB_STATE_QUEUED) return absl::OkStatus();
        j->set_state(v1::JOB_STATE_CANCELLED);
        j->mutable_error()->set_code("CANCELLED");
        j->mutable_error()->set_message("cancelled by request before it started");
        j->mutable_progress()->set_phase("cancelled");
        j->set_end_time_ms(now);
        return absl::OkStatus();
      },
      /*durable=*/true);
  if (job.ok() && job->state() == v1::JOB_STATE_CANCELLED) {
    logger_->Info("job cancelled", {{"job_id", job_id}});
  }
  if (job.ok() && job->state() == v1::JOB_STATE_RUNNING && leases_ != nullptr) {
    // Running here (the token is cancelled above) or on another replica,
    // which sees the request at its next heartbeat.
    absl::Status st = leases_->RequestCancel(job_id);
    if (!st.ok()) return st;
  }
  return job;
}

void WorkerPool::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&idle), grace);
    if (!running_.empty()) {
      requeue_on_cancel_ = true;
      for (auto& [id, r] : running_) r.token->Cancel();
      logger_->Warning("shutdown: cancelling running jobs to requeue them",
                       {{"running", absl::StrCat(running_.size())}});
    }
  }
  // Every WorkerLoop returns now that stopping_ is set; this joins them.
  worker_threads_.reset();
}

int WorkerPool::AcquireThreads(const v1::Recipe& recipe) {
  absl::MutexLock lock(&mu_);
  const int fair_share = std::max(1, thread_budget_ / workers_);
  const int want = recipe.has_threads() ? std::max(1, recipe.threads()) : fair_share;
  // Keep one thread for every worker without a job (this one has one now).
  const int idle_workers = workers_ - (granted_jobs_ + 1);
  const int available = thread_budget_ - granted_threads_ - std::max(idle_workers, 0);
  const int granted = std::max(1, std::min(want, available));
  granted_threads_ += granted;
  granted_jobs_ += 1;
  return granted;
}

void WorkerPool::ReleaseThreads(int granted) {
  absl::MutexLock lock(&mu_);
  granted_threads_ -= granted;
  granted_jobs_ -= 1;
}

void WorkerPool::WorkerLoop() {
  while (true) {
    std::string job_id;
    bool alone = false;
    auto token = std::make_shared<core::CancelToken>();
    {
      absl::MutexLock lock(&mu_);
      // The next job starts when nothing runs alone, and a job that must
      // run alone only when nothing runs.
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (stopping_) return true;
        if (queue_.empty() || alone_running_) return false;
        return run_alone_ids_.count(std::get<2>(*queue_.begin())) == 0 || running_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      job_id = std::get<2>(*queue_.begin());
      queue_.erase(queue_.begin());
      queued_ids_.erase(job_id);
      alone = run_alone_ids_.erase(job_id) != 0;
      if (alone) alone_running_ = true;
      running_[job_id] = Running{token, false};
      ReportGauges();
    }
    if (crash_recorder_ != nullptr) crash_recorder_->BeginJob(job_id);
    RunOne(job_id, token, std::nullopt);
    if (crash_recorder_ != nullptr) crash_recorder_->EndJob();
    {
      absl::MutexLock lock(&mu_);
      running_.erase(job_id);
      if (alone) alone_running_ = false;
      ReportGauges();
    }
  }
}

void WorkerPool::SharedWorkerLoop() {
  bool idle = false;  // the last claim found nothing: wait before the next
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (idle) {
        auto ready = [this]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || wakeups_ > 0; };
        mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(200));
      }
      if (stopping_) return;
      if (wakeups_ > 0) --wakeups_;
    }
    auto claimed = leases_->ClaimNext(owner_, lease_, clock_->NowUnixMs());
    if (!claimed.ok()) {
      logger_->Error("cannot claim a job", {{"error", claimed.status().ToString()}});
      idle = true;
      continue;
    }
    idle = !claimed->has_value();
    if (idle) continue;
    const std::string job_id = (*claimed)->job_id();
    auto token = std::make_shared<core::CancelToken>();
    {
      absl::MutexLock lock(&mu_);
      running_[job_id] = Running{token, false, (*claimed)->attempts(), false};
      shared_queued_ = std::max<int64_t>(0, shared_queued_ - 1);
      ReportGauges();
    }
    RunOne(job_id, token, *std::move(*claimed));
    {
      absl::MutexLock lock(&mu_);
      running_.erase(job_id);
      ReportGauges();
    }
  }
}

void WorkerPool::LeaseLoop() {
  const absl::Duration period = lease_ / 3;
  while (true) {
    std::vector<std::tuple<std::string, int, std::shared_ptr<core::CancelToken>>> held;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ && running_.empty()) return;
      for (const auto& [id, r] : running_) held.emplace_back(id, r.attempt, r.token);
    }
    for (const auto& [id, attempt, token] : held) {
      bool cancel = false;
      absl::Status st = leases_->Heartbeat(id, attempt, lease_, &cancel);
      if (absl::IsAborted(st) || cancel) {
        absl::MutexLock lock(&mu_);
        auto r = running_.find(id);
        if (r != running_.end() && r->second.attempt == attempt) {
          if (cancel) r->second.cancel_requested = true;
          if (absl::IsAborted(st)) r->second.lease_lost = true;
        }
        token->Cancel();
        if (absl::IsAborted(st)) {
          logger_->Warning("lease lost: stopping the job; another attempt owns it",
                           {{"job_id", id}, {"attempt", absl::StrCat(attempt)}});
        }
      } else if (!st.ok()) {
        logger_->Warning("cannot renew a lease", {{"job_id", id}, {"error", st.ToString()}});
      }
    }
    auto requeued = leases_->RequeueExpired(clock_->NowUnixMs());
    if (requeued.ok()) {
      for (const std::string& id : *requeued) {
        logger_->Warning("lease expired; job requeued", {{"job_id", id}});
      }
    }
    auto depth = leases_->QueueDepth();
    {
      absl::MutexLock lock(&mu_);
      if (depth.ok()) shared_queued_ = *depth;
      if (requeued.ok()) wakeups_ += static_cast<int>(requeued->size());
      ReportGauges();
      auto stop = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ && running_.empty(); };
      mu_.AwaitWithTimeout(absl::Condition(&stop), period);
    }
  }
}

void WorkerPool::RunOne(const std::string& job_id, std::shared_ptr<core::CancelToken> token,
                        std::optional<v1::Job> claimed) {
  const int64_t start_ms = claimed ? claimed->start_time_ms() : clock_->NowUnixMs();
  const double start_s = clock_->NowSteadySeconds();
  auto started = claimed ? absl::StatusOr<v1::Job>(*std::move(claimed))
                         : store_->Update(
                               job_id,
                               [start_ms](v1::Job* j) {
                                 if (j->state() != v1::JOB_STATE_QUEUED) {
                                   return absl::FailedPreconditionError("no longer queued");
                                 }
                                 j->set_state(v1::JOB_STATE_RUNNING);
                                 j->set_start_time_ms(start_ms);
                                 j->set_attempts(j->attempts() + 1);
                                 j->mutable_progress()->Clear();
                                 j->mutable_progress()->set_phase("starting");
                                 j->mutable_progress()->set_eta_seconds(-1);
                                 j->clear_error();
                                 return absl::OkStatus();
                               },
                               /*durable=*/true);
  if (!started.ok()) {
    if (!absl::IsFailedPrecondition(started.status()) && !absl::IsNotFound(started.status())) {
      logger_->Error("cannot start job",
                     {{"job_id", job_id}, {"error", started.status().ToString()}});
    }
    return;
  }
  // The fencing token: every later write checks that this attempt still
  // holds the job (with a shared queue another replica may have taken it
  // over after this one's lease expired).
  const int attempt = started->attempts();
  auto fenced = [attempt](const v1::Job& j) {
    if (j.state() != v1::JOB_STATE_RUNNING || j.attempts() != attempt) {
      return absl::AbortedError(
          absl::StrCat("attempt ", attempt, " no longer holds the job (lease lost)"));
    }
    return absl::OkStatus();
  };
  const auto [format, precision] = JobMetricLabels(started->recipe());
  metrics_->JobStarted(format, precision,
                       std::max<double>(0, (start_ms - started->create_time_ms()) / 1000.0));
  logger_->Info("job started", {{"job_id", job_id},
                                {"state", "JOB_STATE_RUNNING"},
                                {"phase", "starting"},
                                {"format", format},
                                {"precision", precision},
                                {"model_id", started->model_id()},
                                {"attempt", absl::StrCat(started->attempts())},
                                {"queue_wait_seconds",
                                 absl::StrCat((start_ms - started->create_time_ms()) / 1000.0)}});

  // Progress: in memory, at most every 100 ms unless the phase changes.
  std::string last_phase;
  double last_update = 0;
  core::RunContext ctx;
  ctx.cancel = token.get();
  ctx.pool = &compute_;
  ctx.progress = [&](const core::Progress& p) {
    double now = clock_->NowSteadySeconds();
    if (p.phase == last_phase && now - last_update < 0.1) return;
    if (p.phase != last_phase) {
      logger_->Info(
          "job phase",
          {{"job_id", job_id}, {"phase", p.phase}, {"seconds", absl::StrCat(now - start_s)}});
    }
    last_phase = p.phase;
    last_update = now;
    double elapsed = now - start_s;
    double eta = -1;
    if (p.bytes_total > 0 && p.bytes_done > 0) {
      eta = elapsed * static_cast<double>(p.bytes_total - std::min(p.bytes_done, p.bytes_total)) /
            static_cast<double>(p.bytes_done);
    } else if (p.tensors_total > 0 && p.tensors_done > 0) {
      eta = elapsed *
            static_cast<double>(p.tensors_total - std::min(p.tensors_done, p.tensors_total)) /
            static_cast<double>(p.tensors_done);
    }
    (void)store_->Update(
        job_id,
        [&](v1::Job* j) {
          if (absl::Status st = fenced(*j); !st.ok()) return st;
          auto* pr = j->mutable_progress();
          pr->set_phase(p.phase);
          pr->set_tensors_done(p.tensors_done);
          pr->set_tensors_total(p.tensors_total);
          pr->set_bytes_done(p.bytes_done);
          pr->set_bytes_total(p.bytes_total);
          pr->set_eta_seconds(eta);
          return absl::OkStatus();
        },
        /*durable=*/false);
  };

  ctx.parallelism = AcquireThreads(started->recipe());
  absl::StatusOr<JobOutcome> outcome = runner_(*started, ctx);
  ReleaseThreads(ctx.parallelism);

  bool requeue = false;
  bool user_cancel = false;
  bool lease_lost = false;
  {
    absl::MutexLock lock(&mu_);
    auto r = running_.find(job_id);
    user_cancel = r != running_.end() && r->second.cancel_requested;
    lease_lost = r != running_.end() && r->second.lease_lost;
    requeue = !outcome.ok() && requeue_on_cancel_ && !user_cancel;
  }
  if (lease_lost) {
    logger_->Warning("job result discarded: its lease was lost",
                     {{"job_id", job_id}, {"attempt", absl::StrCat(attempt)}});
    return;
  }
  const int64_t end_ms = clock_->NowUnixMs();
  const double duration = clock_->NowSteadySeconds() - start_s;
  std::string status_label;
  std::string reason;
  auto final_job = store_->Update(
      job_id,
      [&](v1::Job* j) {
        if (absl::Status st = fenced(*j); !st.ok()) return st;
        if (requeue) {
          // The drain ended the run, not the job: give the attempt back
          // (local queue; with leases the attempt number fences the run).
          if (leases_ == nullptr) j->set_attempts(std::max(0, j->attempts() - 1));
          j->set_state(v1::JOB_STATE_QUEUED);
          j->mutable_progress()->Clear();
          j->mutable_progress()->set_phase("requeued at shutdown");
          j->mutable_progress()->set_eta_seconds(-1);
          j->set_start_time_ms(0);
          return absl::OkStatus();
        }
        j->set_end_time_ms(end_ms);
        j->mutable_progress()->set_eta_seconds(0);
        if (outcome.ok()) {
          j->set_state(v1::JOB_STATE_SUCCEEDED);
          j->mutable_progress()->set_phase("done");
          *j->mutable_report() = outcome->report;
          *j->mutable_artifact() = outcome->artifact;
          status_label = "succeeded";
        } else if (absl::IsCancelled(outcome.status())) {
          j->set_state(v1::JOB_STATE_CANCELLED);
          j->mutable_progress()->set_phase("cancelled");
          j->mutable_error()->set_code("CANCELLED");
          j->mutable_error()->set_message(user_cancel ? "cancelled by request while running"
                                                      : std::string(outcome.status().message()));
          status_label = "cancelled";
        } else {
          j->set_state(v1::JOB_STATE_FAILED);
          j->mutable_progress()->set_phase("failed");
          j->mutable_error()->set_code(StatusCodeName(outcome.status().code()));
          j->mutable_error()->set_message(std::string(outcome.status().message()));
          status_label = "failed";
          reason = FailureReason(outcome.status().code());
        }
        return absl::OkStatus();
      },
      /*durable=*/true);
  if (absl::IsAborted(final_job.status())) {
    logger_->Warning("job result discarded: another attempt owns the job",
                     {{"job_id", job_id}, {"attempt", absl::StrCat(attempt)}});
    return;
  }
  if (!final_job.ok()) {
    logger_->Error("cannot record job end",
                   {{"job_id", job_id}, {"error", final_job.status().ToString()}});
    return;
  }
  if (requeue) {
    logger_->Info(
        "job requeued at shutdown",
        {{"job_id", job_id}, {"state", "JOB_STATE_QUEUED"}, {"phase", "requeued at shutdown"}});
    return;
  }
  metrics_->JobFinished(
      format, precision, status_label, reason, duration, final_job->report().input_file_bytes(),
      final_job->report().output_file_bytes(), final_job->report().weights_quantized());
  logger_->Info("job finished", {{"job_id", job_id},
                                 {"state", v1::JobState_Name(final_job->state())},
                                 {"phase", final_job->progress().phase()},
                                 {"format", format},
                                 {"precision", precision},
                                 {"seconds", absl::StrCat(duration)},
                                 {"error", final_job->error().message()}});
}

}  // namespace quantd::server
