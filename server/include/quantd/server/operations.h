// The service's domain logic as free functions over its parts, so the gRPC
// layer (service.cc) only authenticates, calls one of these and maps the
// status. Every function returns absl::Status codes as the proto documents.
//
// Thread safety: thread-safe (the parts are).
#ifndef QUANTD_SERVER_OPERATIONS_H_
#define QUANTD_SERVER_OPERATIONS_H_

#include <atomic>
#include <string>

#include "absl/status/statusor.h"
#include "quantd/server/blob_store.h"
#include "quantd/server/clock.h"
#include "quantd/server/job_store.h"
#include "quantd/server/logger.h"
#include "quantd/server/metrics.h"
#include "quantd/server/upload_store.h"
#include "quantd/server/worker_pool.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::server {

class Authenticator;
class Executor;
class UploadStreams;

// What the service's handlers need; none of it is owned.
struct ServiceContext {
  BlobStore* blobs = nullptr;
  UploadStore* uploads = nullptr;
  JobStore* jobs = nullptr;
  WorkerPool* pool = nullptr;
  const Authenticator* auth = nullptr;
  Metrics* metrics = nullptr;
  Logger* logger = nullptr;
  Clock* clock = nullptr;
  Executor* io = nullptr;  // blocking file work of streaming calls
  std::string version;
  int max_queued_jobs = 10000;
  uint64_t chunk_bytes = 1 << 20;
  std::atomic<bool>* draining = nullptr;    // true once shutdown began
  UploadStreams* upload_streams = nullptr;  // null: no cap, no idle timeout
};

// sha256 over (model id, canonical recipe, quantd version).
std::string DedupKey(const std::string& model_id, const std::string& canonical_recipe,
                     const std::string& version);

absl::StatusOr<v1::Job> SubmitJob(const ServiceContext& ctx, const v1::SubmitJobRequest& request);
absl::Status DeleteModel(const ServiceContext& ctx, const std::string& model_id);
absl::Status DeleteJob(const ServiceContext& ctx, const std::string& job_id);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_OPERATIONS_H_
