// JobStore: the table of jobs — in memory for fast reads and watches, every
// state transition written through to a JobJournal before it is visible.
//
// Progress updates (non-durable) change only the in-memory copy; state
// changes (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED) are durable.
// Listeners registered with Subscribe see every change of one job.
//
// Thread safety: thread-safe. Readers (Get, List, Subscribe, ...) never wait
// for the journal: writers take turns (one at a time, in arrival order) and
// write the journal without holding the store's lock, so a reader sees the
// last durable state while a write is in flight. Listeners run while the
// store's lock is held: they must be quick, must not block and must not call
// back into the store.
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

class JobStore {
 public:
  using Listener = std::function<void(const v1::Job&)>;

  // `journal` and `clock` are not owned and must outlive the store.
  JobStore(JobJournal* journal, Clock* clock);
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Loads the journal. Jobs that were RUNNING when the previous process
  // stopped go back to QUEUED, or are quarantined (FAILED), as
  // ApplyRestartPolicy (crash_record.h) decides from `crash`, what that
  // process recorded of a fault; `requeued` receives the requeued ids and
  // `quarantined` (may be null) the others.
  absl::Status Recover(const CrashRecord& crash, std::vector<std::string>* requeued,
                       std::vector<std::string>* quarantined = nullptr);
  // The same with no fault recorded.
  absl::Status Recover(std::vector<std::string>* requeued) {
    return Recover(CrashRecord(), requeued);
  }

  struct CreateResult {
    v1::Job job;
    bool created = false;  // false: an existing job was returned
  };
  // Records `job` as QUEUED with a new id and sequence, unless a job with
  // the same idempotency key exists, or a queued/running/succeeded one with
  // the same dedup key: then that job is returned.
  absl::StatusOr<CreateResult> Create(v1::Job job);

  absl::StatusOr<v1::Job> Get(const std::string& job_id);

  // Applies `mutate` (which may refuse by returning an error, leaving the
  // job unchanged) and, when `durable`, journals the result first. Waits for
  // earlier writers (Create, Update, Delete) to finish.
  absl::StatusOr<v1::Job> Update(const std::string& job_id,
                                 const std::function<absl::Status(v1::Job*)>& mutate, bool durable);

  // Removes a finished job. FailedPrecondition if it is queued or running.
  absl::Status Delete(const std::string& job_id);

  // Newest first, filtered as in ListJobsRequest.
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request);

  // Jobs in state QUEUED, in submission order.
  std::vector<v1::Job> Queued();
  // Ids of jobs that are not final and use `model_id`.
  bool HasActiveJobForModel(const std::string& model_id);
  // All job ids (for artifact clean-up after a restart) whose state is SUCCEEDED.
  bool IsSucceeded(const std::string& job_id);

  // Calls `listener` with every later change of the job; returns a token and
  // the job's current state, atomically. NotFound.
  absl::StatusOr<std::pair<int64_t, v1::Job>> Subscribe(const std::string& job_id,
                                                        Listener listener);
  // After Unsubscribe returns, the listener is not running and never runs again.
  void Unsubscribe(int64_t token);

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
