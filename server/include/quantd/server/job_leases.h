// JobLeases: the claim/lease side of a job queue shared by several server
// replicas (PostgresJobStore implements it; the embedded store does not
// need it: one process owns its queue).
//
// A replica claims a QUEUED job, which becomes RUNNING with attempts + 1
// and a lease (an expiry time kept by the database's clock) owned by the
// replica. The attempt number is the fencing token: while running, the
// replica heartbeats (extends the lease of its attempt), and every later
// change it makes to the job (progress, the final state) is conditional on
// the job still being RUNNING with that attempt number (JobStore::Update
// with a check in `mutate`). A lease that expires (the replica was killed,
// paused or cut off) puts the job back in the queue (RequeueExpired, which
// any replica may run), so the next claim takes attempt + 1 and the old
// replica's writes are refused from then on.
//
// Thread safety: implementations are thread-safe.
#ifndef QUANTD_SERVER_JOB_LEASES_H_
#define QUANTD_SERVER_JOB_LEASES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::server {

class JobLeases {
 public:
  virtual ~JobLeases() = default;

  // Claims the QUEUED job with the highest priority, oldest first, that no
  // other replica is claiming at the same moment: it becomes RUNNING with
  // attempts + 1, start time `now_ms` and a lease owned by `owner` that
  // expires after `lease`. nullopt when nothing is queued.
  virtual absl::StatusOr<std::optional<v1::Job>> ClaimNext(const std::string& owner,
                                                           absl::Duration lease,
                                                           int64_t now_ms) = 0;

  // Extends the lease of `attempt` of the job by `lease` from now. Aborted
  // when that attempt no longer holds the job (requeued after its lease
  // expired, taken over, or ended). *cancel_requested: a CancelJob reached
  // another replica (RequestCancel) and the runner should stop.
  virtual absl::Status Heartbeat(const std::string& job_id, int attempt, absl::Duration lease,
                                 bool* cancel_requested) = 0;

  // Puts RUNNING jobs whose lease expired back in the queue (FAILED after
  // JobStore::kMaxAttempts attempts); returns the ids of those requeued.
  virtual absl::StatusOr<std::vector<std::string>> RequeueExpired(int64_t now_ms) = 0;

  // Asks whichever replica runs the job to cancel it (seen at its next
  // heartbeat). No effect on a job that is not RUNNING.
  virtual absl::Status RequestCancel(const std::string& job_id) = 0;

  // Jobs QUEUED in the shared queue (for the queue-depth gauge).
  virtual absl::StatusOr<int64_t> QueueDepth() = 0;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_JOB_LEASES_H_
