// JobStore: the table of jobs, one interface with two implementations:
//  - EmbeddedJobStore (this file): in memory for fast reads and watches,
//    every state transition written through to a JobJournal (SQLite) before
//    it is visible. One server per data directory; the default.
//  - PostgresJobStore (postgres_job_store.h): the rows live in PostgreSQL,
//    shared by any number of replicas (scale-out mode).
//
// Progress updates (non-durable) may be lost in a crash; state changes
// (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED) are durable. Listeners
// registered with Subscribe see changes of one job in the order they were
// made (a listener may miss intermediate progress, never sees an older
// record after a newer one).
//
// Thread safety: implementations are thread-safe. Listeners must be quick,
// must not block and must not call back into the store (they may run while
// the store holds a lock).
#ifndef QUANTD_SERVER_JOB_STORE_H_
#define QUANTD_SERVER_JOB_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "quantd/server/clock.h"
#include "quantd/server/crash_record.h"
#include "quantd/server/job_journal.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::server {

bool IsFinalState(v1::JobState state);

// ListJobsRequest rules shared by the implementations: parses the page
// token (jobs with sequence < *before) and the page size; InvalidArgument
// for a bad token, size or state.
absl::Status ParseListRequest(const v1::ListJobsRequest& request, uint64_t* before, int* page_size);
// True if `job` passes the request's filters and lies before the page token.
bool MatchesListFilter(const v1::ListJobsRequest& request, uint64_t before, const v1::Job& job);

class JobStore {
 public:
  using Listener = std::function<void(const v1::Job&)>;
  // With the shared store, a job whose lease expires this many times (its
  // replica died or was cut off while running it) fails instead of running
  // again. (The embedded store counts restarts by ApplyRestartPolicy.)
  static constexpr int kMaxAttempts = 3;

  virtual ~JobStore() = default;

  // Loads or connects. Jobs that were RUNNING and whose runner is gone (the
  // embedded store: all of them, this server just started; the shared
  // store: those whose lease expired) go back to QUEUED, or are quarantined
  // (FAILED) as ApplyRestartPolicy (crash_record.h) decides from `crash`,
  // what the previous process recorded of a fault (the shared store has no
  // such record: an expired lease counts an attempt, and a job fails after
  // its last). `requeued` receives the requeued ids and `quarantined` (may
  // be null) the failed ones.
  virtual absl::Status Recover(const CrashRecord& crash, std::vector<std::string>* requeued,
                               std::vector<std::string>* quarantined) = 0;
  // The same with no fault recorded.
  absl::Status Recover(std::vector<std::string>* requeued) {
    return Recover(CrashRecord(), requeued, nullptr);
  }

  struct CreateResult {
    v1::Job job;
    bool created = false;  // false: an existing job was returned
  };
  // Records `job` as QUEUED with a new id and sequence, unless a job with
  // the same idempotency key exists, or a queued/running/succeeded one with
  // the same dedup key: then that job is returned.
  virtual absl::StatusOr<CreateResult> Create(v1::Job job) = 0;

  virtual absl::StatusOr<v1::Job> Get(const std::string& job_id) = 0;

  // Applies `mutate` to the current record (it may refuse by returning an
  // error, leaving the job unchanged) and stores the result, durably when
  // `durable`. Read, mutate and write are one atomic step: no other Update
  // of the job (in this process or, for the shared store, any replica)
  // interleaves, so a check in `mutate` (state, attempt number) fences the
  // write.
  virtual absl::StatusOr<v1::Job> Update(const std::string& job_id,
                                         const std::function<absl::Status(v1::Job*)>& mutate,
                                         bool durable) = 0;

  // Removes a finished job. FailedPrecondition if it is queued or running.
  virtual absl::Status Delete(const std::string& job_id) = 0;

  // Newest first, filtered as in ListJobsRequest.
  virtual absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request) = 0;

  // Jobs in state QUEUED, in submission order.
  virtual std::vector<v1::Job> Queued() = 0;
  // True if a job that is not final uses `model_id`.
  virtual bool HasActiveJobForModel(const std::string& model_id) = 0;
  // True if the job exists and SUCCEEDED (artifact clean-up after a restart).
  virtual bool IsSucceeded(const std::string& job_id) = 0;

  // Calls `listener` with every later change of the job; returns a token and
  // the job's current state, atomically. NotFound.
  virtual absl::StatusOr<std::pair<int64_t, v1::Job>> Subscribe(const std::string& job_id,
                                                                Listener listener) = 0;
  // After Unsubscribe returns, the listener is not running and never runs again.
  virtual void Unsubscribe(int64_t token) = 0;
};

// EmbeddedJobStore: the jobs in memory, every state transition journaled
// (JobJournal) before it is visible.
//
// Thread safety: thread-safe. Readers (Get, List, Subscribe, ...) never wait
// for the journal: writers take turns (one at a time, in arrival order) and
// write the journal without holding the store's lock, so a reader sees the
// last durable state while a write is in flight. Listeners run while the
// store's lock is held.
class EmbeddedJobStore final : public JobStore {
 public:
  // `journal` and `clock` are not owned and must outlive the store.
  EmbeddedJobStore(JobJournal* journal, Clock* clock);
  EmbeddedJobStore(const EmbeddedJobStore&) = delete;
  EmbeddedJobStore& operator=(const EmbeddedJobStore&) = delete;

  using JobStore::Recover;
  absl::Status Recover(const CrashRecord& crash, std::vector<std::string>* requeued,
                       std::vector<std::string>* quarantined) override;
  absl::StatusOr<CreateResult> Create(v1::Job job) override;
  absl::StatusOr<v1::Job> Get(const std::string& job_id) override;
  absl::StatusOr<v1::Job> Update(const std::string& job_id,
                                 const std::function<absl::Status(v1::Job*)>& mutate,
                                 bool durable) override;
  absl::Status Delete(const std::string& job_id) override;
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request) override;
  std::vector<v1::Job> Queued() override;
  bool HasActiveJobForModel(const std::string& model_id) override;
  bool IsSucceeded(const std::string& job_id) override;
  absl::StatusOr<std::pair<int64_t, v1::Job>> Subscribe(const std::string& job_id,
                                                        Listener listener) override;
  void Unsubscribe(int64_t token) override;

 private:
  class WriterTurn;
  void Notify(const v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  JobJournal* const journal_;
  Clock* const clock_;

  absl::Mutex mu_;
  std::map<std::string, v1::Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> by_idempotency_key_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> by_dedup_key_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  // Writers take tickets and run in ticket order (see WriterTurn). Only the
  // writer whose ticket is being served changes jobs_ and the indexes above
  // or writes the journal.
  uint64_t next_writer_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t serving_writer_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  std::multimap<std::string, std::pair<int64_t, Listener>> listeners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_JOB_STORE_H_
