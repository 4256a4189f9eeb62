// WorkerPool: worker threads that run queued jobs, highest priority first
// and FIFO within a priority. A job is in exactly one place at a time — the
// queue, one worker, or nowhere (final) — so it never runs twice at once.
// Cancellation of a running job reaches the core through its CancelToken.
//
// Threads: the pool owns two core::ThreadPools, sized from one compute
// budget B (--max-job-threads) and the worker count W (--workers):
//  - min(W, B) worker threads, each running one job at a time (so at most
//    min(W, B) jobs run at once: every running job computes on at least its
//    own worker thread);
//  - one compute pool of B - 1 threads shared by all running jobs.
// A job that starts is granted a parallelism g (threads computing for it,
// its worker thread included) and runs with a RunContext{compute pool, g}:
//   want = the recipe's `threads` when the client set it (a hint),
//          else the fair share max(1, B / min(W, B));
//   g    = min(want, B - granted to running jobs - one thread for each
//              worker that has no job yet), at least 1.
// So the grants of running jobs always sum to at most B and every worker
// that picks up a job later still finds a thread: no more than B threads
// compute at once, whatever the hints. The grant is returned when the job
// ends.
//
// Shared queue (UseSharedQueue, the PostgreSQL job store): there is no
// local queue; idle workers claim the next job from the store's JobLeases
// (woken by local submits, else every 200 ms), and one more thread
// heartbeats the leases of running jobs every third of a lease, requeues
// jobs whose lease expired (any replica's) and reads the queue depth. A
// running job's every write is fenced by its attempt number: a job whose
// lease was lost (requeued, taken over) is cancelled and its result
// discarded, never recorded over the new attempt.
//
// A job marked run_alone (a suspect of a crash that could not be attributed,
// see crash_record.h) starts only when no other job runs, and no other job
// starts while it runs, so a further crash is attributed to the right job.
// With a CrashRecorder set, each worker tells it which job it runs.
//
// The job itself is run by an injected JobRunner (the real one calls
// core::Run; tests pass fakes). State transitions go through the JobStore
// (durable); progress updates are in-memory and throttled.
//
// Thread safety: thread-safe.
#ifndef QUANTD_SERVER_WORKER_POOL_H_
#define QUANTD_SERVER_WORKER_POOL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "quantd/core/base/thread_pool.h"
#include "quantd/core/run_context.h"
#include "quantd/server/clock.h"
#include "quantd/server/job_leases.h"
#include "quantd/server/crash_record.h"
#include "quantd/server/job_store.h"
#include "quantd/server/logger.h"
#include "quantd/server/metrics.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::server {

struct JobOutcome {
  v1::Report report;
  v1::Artifact artifact;
};

// Runs one job to completion with the threads of `ctx` (ctx.Parallelism(),
// the calling worker thread included). Must poll ctx.cancel and return
// CancelledError when it fires; reports progress through ctx.progress (same
// thread).
using JobRunner =
    std::function<absl::StatusOr<JobOutcome>(const v1::Job& job, const core::RunContext& ctx)>;

class WorkerPool {
 public:
  // `store`, `clock`, `logger`, `metrics` are not owned; they must outlive
  // the pool. `thread_budget` is B above (threads computing for all running
  // jobs together). REQUIRES workers >= 1, thread_budget >= 1.
  WorkerPool(int workers, int thread_budget, JobStore* store, JobRunner runner, Clock* clock,
             Logger* logger, Metrics* metrics);
  ~WorkerPool();  // Shutdown(absl::ZeroDuration()) if still running
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Claim jobs from `leases` (shared by replicas) instead of a local queue,
  // holding leases of `lease` as `owner` (unique per replica). `leases` is
  // not owned and must outlive the pool. REQUIRES: before Start.
  void UseSharedQueue(JobLeases* leases, std::string owner, absl::Duration lease);
  // Optional, before Start: tells `recorder` (not owned, must outlive the
  // pool) which job each worker runs.
  void SetCrashRecorder(CrashRecorder* recorder) { crash_recorder_ = recorder; }
  // Queues every QUEUED job of the store (local queue) and starts the threads.
  void Start();
  // Adds a QUEUED job (just created by the store); with a shared queue,
  // wakes an idle worker to claim it.
  void Enqueue(const v1::Job& job);
  // Queued: the job becomes CANCELLED now. Running: the core is told to
  // stop; the job becomes CANCELLED when it does. Final: unchanged.
  // Returns the job as it is after the call. NotFound.
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id);
  // Stops taking jobs, waits up to `grace` for running jobs to finish, then
  // cancels the rest and puts them back in QUEUED (durably) so the next
  // start runs them. Joins the threads. Idempotent.
  void Shutdown(absl::Duration grace);

  int queued();
  int running();
  // Worker threads: min(workers, thread_budget).
  int workers() const { return workers_; }

 private:
  struct Running {
    std::shared_ptr<core::CancelToken> token;
    bool cancel_requested = false;  // by a user, not by shutdown
    int attempt = 0;                // shared queue: the lease's fencing token
    bool lease_lost = false;        // shared queue: another attempt owns the job
  };
  // (-priority, sequence, id): std::set order = run order.
  using QueueKey = std::tuple<int, uint64_t, std::string>;

  void WorkerLoop();
  void SharedWorkerLoop();
  void LeaseLoop();
  // `claimed`: the job as ClaimNext returned it (already RUNNING); nullopt
  // for the local queue (RunOne moves it from QUEUED to RUNNING).
  void RunOne(const std::string& job_id, std::shared_ptr<core::CancelToken> token,
              std::optional<v1::Job> claimed);
  void ReportGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Grants a job threads from the budget (the rule above) / returns them.
  int AcquireThreads(const v1::Recipe& recipe);
  void ReleaseThreads(int granted);

  // Constant after construction.
  const int workers_;  // min(workers, thread_budget)
  const int thread_budget_;
  JobStore* const store_;
  const JobRunner runner_;
  Clock* const clock_;
  Logger* const logger_;
  Metrics* const metrics_;
  CrashRecorder* crash_recorder_ = nullptr;  // set before Start

  absl::Mutex mu_;
  std::set<QueueKey> queue_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> queued_ids_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> run_alone_ids_ ABSL_GUARDED_BY(mu_);  // queued, run_alone
  bool alone_running_ ABSL_GUARDED_BY(mu_) = false;           // a run_alone job runs
  std::map<std::string, Running> running_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool requeue_on_cancel_ ABSL_GUARDED_BY(mu_) = false;
  int granted_threads_ ABSL_GUARDED_BY(mu_) = 0;  // sum of running jobs' grants
  int granted_jobs_ ABSL_GUARDED_BY(mu_) = 0;     // jobs holding a grant
  // Shared queue (set by UseSharedQueue before Start, then constant).
  JobLeases* leases_ = nullptr;
  std::string owner_;
  absl::Duration lease_;
  int wakeups_ ABSL_GUARDED_BY(mu_) = 0;            // local submits not yet claimed
  int64_t shared_queued_ ABSL_GUARDED_BY(mu_) = 0;  // the store's queue depth, last read

  // Compute threads shared by running jobs (thread_budget - 1); declared
  // before the workers so it outlives them.
  core::ThreadPool compute_;
  // The worker threads, one long-lived WorkerLoop each; created by Start,
  // destroyed (joined) by Shutdown.
  std::unique_ptr<core::ThreadPool> worker_threads_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_WORKER_POOL_H_
