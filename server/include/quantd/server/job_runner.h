// CoreJobRunner: the real JobRunner — runs one job through core::Run and
// commits its output as the job's artifact.
//
// Steps: resolve the model's files in the BlobStore, translate the recorded
// recipe, run the core with the worker's RunContext (its threads were granted
// by the WorkerPool; recipe.threads was only a hint) into a fresh work
// directory, hash the outputs and move them into artifacts/<job id>
// atomically. On any error the work directory is removed. An MLX recipe
// reads the model's folder (a checkpoint uploaded as its files) and writes
// its folder into the work directory; the artifact is marked as a folder.
//
// Thread safety: Run may be called from several workers at once (each job
// has its own work directory).
#ifndef QUANTD_SERVER_JOB_RUNNER_H_
#define QUANTD_SERVER_JOB_RUNNER_H_

#include "absl/status/statusor.h"
#include "quantd/core/run_context.h"
#include "quantd/server/blob_store.h"
#include "quantd/server/worker_pool.h"

namespace quantd::server {

class CoreJobRunner {
 public:
  // `blobs` is not owned.
  explicit CoreJobRunner(BlobStore* blobs) : blobs_(blobs) {}

  absl::StatusOr<JobOutcome> Run(const v1::Job& job, const core::RunContext& ctx);

 private:
  BlobStore* const blobs_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_JOB_RUNNER_H_
