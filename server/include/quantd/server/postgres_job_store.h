// PostgresJobStore: the JobStore of the scale-out mode. Jobs are rows of a
// PostgreSQL table shared by every replica; there is no in-memory copy, so
// every replica reads what any other wrote. It is also the shared queue
// (JobLeases: claims with SELECT ... FOR UPDATE SKIP LOCKED, leases,
// fencing by attempt number), and it coordinates uploads in the shared data
// directory across replicas (UploadReservations).
//
// Schema: created and migrated by Open (versioned migrations in a table
// quantd_schema_migrations, applied under a transaction-scoped advisory
// lock, so replicas that start at once apply each migration exactly once).
//
// Uniqueness holds across replicas by constraint, not by read-then-write:
// a unique index on the idempotency key and a partial unique index on the
// dedup key of jobs that are not FAILED or CANCELLED; Create inserts with
// ON CONFLICT DO NOTHING and returns the row that won.
//
// Watching: every state change is followed (in its transaction) by
// NOTIFY quantd_job_events, payload the job id. One listener thread per
// store LISTENs, and also re-reads every watched job each poll interval
// (the fallback if a notification is lost with a connection). Each row has
// a revision that every write increments; a subscriber is only ever given
// a higher revision than the last one it saw, so events stay in order.
//
// Thread safety: thread-safe. Connections come from a small pool; a
// connection that broke is reset on its next use. Listeners run with the
// store's lock held (as in EmbeddedJobStore), on the thread that made the
// change or on the listener thread.
#ifndef QUANTD_SERVER_POSTGRES_JOB_STORE_H_
#define QUANTD_SERVER_POSTGRES_JOB_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "quantd/server/clock.h"
#include "quantd/server/job_leases.h"
#include "quantd/server/job_store.h"
#include "quantd/server/upload_reservations.h"

namespace quantd::server {

class PgConnectionPool;

struct PostgresJobStoreOptions {
  std::string dsn;                                  // libpq connection string or postgres:// URI
  int max_connections = 8;                          // pooled connections (plus one for LISTEN)
  absl::Duration poll_interval = absl::Seconds(1);  // watch fallback
};

class PostgresJobStore final : public JobStore, public JobLeases, public UploadReservations {
 public:
  // Connects, applies pending schema migrations and starts the listener.
  // Unavailable if the server cannot be reached. `clock` is not owned.
  static absl::StatusOr<std::unique_ptr<PostgresJobStore>> Open(
      const PostgresJobStoreOptions& options, Clock* clock);
  ~PostgresJobStore() override;  // stops the listener thread
  PostgresJobStore(const PostgresJobStore&) = delete;
  PostgresJobStore& operator=(const PostgresJobStore&) = delete;

  // The schema version this build migrates to.
  static int LatestSchemaVersion();

  // --- JobStore ---
  // Requeues RUNNING jobs whose lease expired (live leases belong to other
  // replicas and are left alone). `crash` is not used: replicas share the
  // directory, and an expired lease counts the attempt instead.
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

  // --- JobLeases ---
  absl::StatusOr<std::optional<v1::Job>> ClaimNext(const std::string& owner, absl::Duration lease,
                                                   int64_t now_ms) override;
  absl::Status Heartbeat(const std::string& job_id, int attempt, absl::Duration lease,
                         bool* cancel_requested) override;
  absl::StatusOr<std::vector<std::string>> RequeueExpired(int64_t now_ms) override;
  absl::Status RequestCancel(const std::string& job_id) override;
  absl::StatusOr<int64_t> QueueDepth() override;

  // --- UploadReservations ---
  absl::Status ReserveUpload(const std::string& upload_id, const std::string& owner,
                             absl::Duration ttl) override;
  void ReleaseUpload(const std::string& upload_id, const std::string& owner) override;
  absl::Status RenewUploadReservations(const std::string& owner, absl::Duration ttl) override;
  bool IsUploadReserved(const std::string& upload_id) override;
  bool ClaimUploadSweep(absl::Duration period) override;

 private:
  struct Subscriber {
    std::string job_id;
    Listener listener;
    int64_t revision = 0;  // the newest revision this subscriber has seen
  };

  PostgresJobStore(PostgresJobStoreOptions options, Clock* clock,
                   std::unique_ptr<PgConnectionPool> pool);
  // Gives `job` at `revision` to the job's subscribers that have not seen it.
  void Dispatch(const v1::Job& job, int64_t revision);
  // Re-reads the jobs and dispatches them.
  void Refresh(const std::vector<std::string>& job_ids);
  void ListenLoop();

  // Constant after construction.
  const PostgresJobStoreOptions options_;
  Clock* const clock_;
  const std::unique_ptr<PgConnectionPool> pool_;

  absl::Mutex mu_;
  std::map<int64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> to_refresh_ ABSL_GUARDED_BY(mu_);  // newly subscribed
  int64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread listener_;  // ListenLoop; joined by the destructor
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_POSTGRES_JOB_STORE_H_
