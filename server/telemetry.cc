#include "quantd/server/telemetry.h"

#ifdef QUANTD_HAVE_METRICS
#include "quantd/server/metrics.h"
#define QUANTD_FORWARD(call) \
  do {                       \
    if (metrics_ != nullptr) metrics_->call; \
  } while (0)
#else
#define QUANTD_FORWARD(call) \
  do {                       \
    (void)metrics_;          \
  } while (0)
#endif

namespace quantd::server {

void Telemetry::JobSubmitted(const std::string& format, const std::string& precision) {
  QUANTD_FORWARD(JobSubmitted(format, precision));
}
void Telemetry::JobStarted(const std::string& format, const std::string& precision,
                           double queue_wait_s) {
  QUANTD_FORWARD(JobStarted(format, precision, queue_wait_s));
}
void Telemetry::JobFinished(const std::string& format, const std::string& precision,
                            const std::string& status, const std::string& reason,
                            double duration_s, uint64_t input_bytes, uint64_t output_bytes,
                            uint64_t weights_quantized) {
  QUANTD_FORWARD(JobFinished(format, precision, status, reason, duration_s, input_bytes,
                             output_bytes, weights_quantized));
}
void Telemetry::SetJobsQueued(int64_t n) { QUANTD_FORWARD(SetJobsQueued(n)); }
void Telemetry::SetJobsRunning(int64_t n) { QUANTD_FORWARD(SetJobsRunning(n)); }
void Telemetry::SetWorkersBusy(int64_t n) { QUANTD_FORWARD(SetWorkersBusy(n)); }
void Telemetry::UploadStarted() { QUANTD_FORWARD(UploadStarted()); }
void Telemetry::UploadBytes(uint64_t n) { QUANTD_FORWARD(UploadBytes(n)); }
void Telemetry::UploadFinished(bool ok, const std::string& reason) {
  QUANTD_FORWARD(UploadFinished(ok, reason));
}
void Telemetry::DownloadBytes(uint64_t n) { QUANTD_FORWARD(DownloadBytes(n)); }
void Telemetry::SetStoreBytes(uint64_t used_bytes, uint64_t free_bytes) {
  QUANTD_FORWARD(SetStoreBytes(used_bytes, free_bytes));
}
void Telemetry::RpcFinished(const std::string& method, const std::string& code, double seconds) {
  QUANTD_FORWARD(RpcFinished(method, code, seconds));
}

}  // namespace quantd::server
