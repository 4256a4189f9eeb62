// Telemetry: the service's single door to Metrics. Holds an optional
// Metrics* (not owned) and forwards to it; without metrics (no
// --metrics-listen, or a build without quantd_metrics) every call is a no-op,
// so callers never check.
//
// Thread safety: thread-safe (Metrics is).
#ifndef QUANTD_SERVER_TELEMETRY_H_
#define QUANTD_SERVER_TELEMETRY_H_

#include <cstdint>
#include <string>

namespace quantd::server {

class Metrics;

class Telemetry {
 public:
  explicit Telemetry(Metrics* metrics = nullptr) : metrics_(metrics) {}

  void JobSubmitted(const std::string& format, const std::string& precision);
  void JobStarted(const std::string& format, const std::string& precision, double queue_wait_s);
  void JobFinished(const std::string& format, const std::string& precision,
                   const std::string& status, const std::string& reason, double duration_s,
                   uint64_t input_bytes, uint64_t output_bytes, uint64_t weights_quantized);
  void SetJobsQueued(int64_t n);
  void SetJobsRunning(int64_t n);
  void SetWorkersBusy(int64_t n);
  void UploadStarted();
  void UploadBytes(uint64_t n);
  void UploadFinished(bool ok, const std::string& reason);
  void DownloadBytes(uint64_t n);
  void SetStoreBytes(uint64_t used_bytes, uint64_t free_bytes);
  void RpcFinished(const std::string& method, const std::string& code, double seconds);

 private:
  Metrics* const metrics_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_TELEMETRY_H_
