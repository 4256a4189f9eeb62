// UploadReservations: which server replica is writing which upload, and
// which replica sweeps expired uploads, when several replicas share one
// data directory (PostgresJobStore implements it in the database). Each
// replica still keeps its own in-process set of open uploads; this adds the
// cross-replica part:
//  - an upload is written by one stream at a time across all replicas: a
//    replica reserves the upload id before opening it and releases it when
//    the stream ends; a reservation of a replica that died expires after
//    its TTL unless the replica renews its reservations;
//  - the TTL clean-up of old uploads runs on one replica per period, and
//    skips uploads that are reserved.
//
// Thread safety: implementations are thread-safe.
#ifndef QUANTD_SERVER_UPLOAD_RESERVATIONS_H_
#define QUANTD_SERVER_UPLOAD_RESERVATIONS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace quantd::server {

class UploadReservations {
 public:
  virtual ~UploadReservations() = default;
  // Reserves `upload_id` for `owner` for `ttl`. Aborted while another
  // owner's reservation is live.
  virtual absl::Status ReserveUpload(const std::string& upload_id, const std::string& owner,
                                     absl::Duration ttl) = 0;
  virtual void ReleaseUpload(const std::string& upload_id, const std::string& owner) = 0;
  // Extends every reservation of `owner` to `ttl` from now.
  virtual absl::Status RenewUploadReservations(const std::string& owner, absl::Duration ttl) = 0;
  // True if some replica holds a live reservation (or the answer is unknown).
  virtual bool IsUploadReserved(const std::string& upload_id) = 0;
  // True for the one caller, across replicas, that may run the upload
  // sweep now; the next may run after `period`.
  virtual bool ClaimUploadSweep(absl::Duration period) = 0;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_UPLOAD_RESERVATIONS_H_
