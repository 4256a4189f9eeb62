// Metrics: every Prometheus metric quantd exports, as one injected object.
//
// Created once by `quantd serve` on a prometheus::Registry it owns and
// passed to the parts that report (service, worker pool, blob store). Label
// sets are bounded (format, precision, status, reason, method, code); never a
// job id. Names follow Prometheus conventions: prefix quantd_, base units,
// counters end in _total. docs/operations.md documents each metric.
//
// Label values outside the documented sets are recorded as "other" (an
// unknown gRPC code as "UNKNOWN", an unknown job status as "failed"), so a
// caller can never create series; docs/operations.md lists every value.
//
// Thread safety: every method is safe to call from any thread.
#ifndef QUANTD_SERVER_METRICS_H_
#define QUANTD_SERVER_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>

namespace prometheus {
class Registry;
}

namespace quantd::server {

class Metrics {
 public:
  // Registers the families on `registry` (not owned; must outlive this).
  Metrics(prometheus::Registry* registry, int workers_total, const std::string& version);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Jobs. `format` is "onnx"|"gguf"; `precision` "fp32"|"fp16"|"int8"|"int4" or
  // a GGUF file type as the core accepts it (any case; aliases such as
  // "Q4_K" count as their file type, "q4_k_m"); `status` is
  // "succeeded"|"failed"|"cancelled"; `reason` a short failure class
  // ("invalid_model", "unsupported", "internal", ...), "" when none.
  void JobSubmitted(const std::string& format, const std::string& precision);
  void JobStarted(const std::string& format, const std::string& precision,
                  double queue_wait_seconds);
  void JobFinished(const std::string& format, const std::string& precision,
                   const std::string& status, const std::string& reason, double duration_seconds,
                   uint64_t input_bytes, uint64_t output_bytes, uint64_t weights_quantized);
  void SetJobsQueued(int64_t n);
  void SetJobsRunning(int64_t n);
  void SetWorkersBusy(int64_t n);

  // Transfers and storage. UploadStarted() and UploadFinished() pair up
  // (quantd_uploads_in_progress is started minus finished): call
  // UploadFinished() exactly once for each UploadStarted(), and never for a
  // stream rejected before UploadStarted().
  void UploadStarted();
  void UploadBytes(uint64_t n);
  void UploadFinished(bool ok, const std::string& reason);  // reason: "digest_mismatch", ...
  void DownloadBytes(uint64_t n);
  void SetStoreBytes(uint64_t used_bytes, uint64_t free_bytes);

  // gRPC: one call finished. `method` is the short rpc name ("UploadModel"),
  // `code` the canonical status code name ("OK", "INVALID_ARGUMENT").
  void RpcFinished(const std::string& method, const std::string& code, double seconds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_METRICS_H_
