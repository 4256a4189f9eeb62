// Metrics: the Prometheus families quantd exports (see metrics.h and
// docs/operations.md, which lists every metric).
//
// Every label set is resolved once, in the constructor, and kept as a
// reference: the hot paths only do an immutable hash-map lookup and an atomic
// add. Label values outside the bounded vocabularies below are folded into
// "other", so a client cannot create new series. The format and precision
// vocabularies come from the core's own tables (recipe precisions, GGUF file
// types), so every target the core accepts has its series.
#include "quantd/server/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "quantd/core/gguf/gguf_mix.h"
#include "quantd/core/recipe.h"

namespace quantd::server {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

constexpr std::string_view kOther = "other";

// Bounded vocabularies. A (format, precision) pair is valid when the
// precision belongs to the format (see JobLabelVocabulary()); anything else
// becomes (format, "other") or ("other", "other").
constexpr std::array<std::string_view, 3> kStatuses = {"succeeded", "failed", "cancelled"};

// Failure classes shared by jobs and uploads. Empty becomes "unknown".
constexpr std::array<std::string_view, 24> kReasons = {
    "invalid_model",      "invalid_recipe",    "invalid_argument", "unsupported",
    "unimplemented",      "not_found",         "already_exists",   "failed_precondition",
    "resource_exhausted", "out_of_range",      "digest_mismatch",  "size_mismatch",
    "incomplete",         "io_error",          "data_loss",        "aborted",
    "cancelled",          "deadline_exceeded", "unavailable",      "unauthenticated",
    "permission_denied",  "internal",          "unknown",          "other"};

// The quantd.v1 rpcs plus the standard services the server registers. Kept in
// step with proto/quantd/v1 by tests/ops (ValidateDeploy checks each rpc is
// here).
constexpr std::array<std::string_view, 15> kRpcMethods = {
    "UploadModel",      "GetUploadStatus", "AbortUpload", "GetModel",  "DeleteModel",
    "SubmitJob",        "GetJob",          "ListJobs",    "CancelJob", "WatchJob",
    "DownloadArtifact", "DeleteJob",       "Check",       "Watch",     "ServerReflectionInfo"};

constexpr std::array<std::string_view, 17> kGrpcCodes = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

// 0.1 s to 2 h, roughly 1-2.5-5 steps then minutes.
const std::vector<double> kDurationBuckets = {0.1, 0.25, 0.5, 1,   2.5,  5,    10,   30,
                                              60,  120,  300, 600, 1200, 1800, 3600, 7200};
// gRPC latency: 1 ms to 2 h (streams such as WatchJob live as long as a job).
const std::vector<double> kRpcBuckets = {0.001, 0.005, 0.025, 0.1, 0.5,  1,   2.5,
                                         10,    30,    120,   600, 1800, 7200};
// input bytes / output bytes: FP16->FP32 is 0.5, FP32->FP16 2, ->INT8 ~4,
// ->INT4 ~6-7.5.
const std::vector<double> kRatioBuckets = {0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 6, 7, 8, 10, 16};

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The job label vocabulary from the core's tables: ONNX precisions by name
// ("int4"), GGUF file types by canonical name in lower case ("q4_k_m"), MLX
// code widths and mixed recipes ("4bit", "mixed_3_6"), each
// with every spelling the core accepts for it (aliases: "q4_k" -> "q4_k_m").
struct PrecisionLabels {
  std::vector<std::string> labels;                         // one series each
  std::unordered_map<std::string, std::string> spellings;  // accepted name -> label
};

PrecisionLabels OnnxPrecisionLabels() {
  PrecisionLabels out;
  for (const std::string& name : core::PrecisionNames()) {
    out.labels.push_back(name);
    out.spellings.emplace(name, name);
  }
  return out;
}

// MLX conversions by code width or mixed recipe ("4bit", "mixed_3_6").
PrecisionLabels MlxPrecisionLabels() {
  PrecisionLabels out;
  for (const std::string& name : core::MlxPrecisionNames()) {
    out.labels.push_back(name);
    out.spellings.emplace(name, name);
  }
  return out;
}

PrecisionLabels GgufPrecisionLabels() {
  PrecisionLabels out;
  for (const std::string& name : core::gguf::FileTypeNames()) {
    absl::StatusOr<core::gguf::FileType> ftype = core::gguf::ParseFileType(name);
    if (!ftype.ok()) continue;  // cannot happen: the names come from the same table
    std::string label = Lower(core::gguf::FileTypeName(*ftype));
    if (std::find(out.labels.begin(), out.labels.end(), label) == out.labels.end()) {
      out.labels.push_back(label);
    }
    out.spellings.emplace(Lower(name), label);
  }
  return out;
}

std::string Key(std::string_view a, std::string_view b) {
  std::string k(a);
  k += '\0';
  k += b;
  return k;
}

// Series of one (format, precision) pair.
struct JobSeries {
  Counter* submitted = nullptr;
  Counter* started = nullptr;
  std::array<Counter*, kStatuses.size()> finished{};
  Counter* input_bytes = nullptr;
  Counter* output_bytes = nullptr;
  Counter* weights = nullptr;
  Histogram* duration = nullptr;
  Histogram* ratio = nullptr;
};

// Series of one rpc method.
struct RpcSeries {
  std::array<Counter*, kGrpcCodes.size()> requests{};
  Histogram* latency = nullptr;
};

}  // namespace

struct Metrics::Impl {
  // All of these are written in the constructor only; afterwards the maps are
  // read-only, so concurrent lookups need no lock. The metric objects
  // themselves are thread-safe.
  std::unordered_map<std::string, JobSeries> jobs;            // Key(format, precision)
  std::unordered_map<std::string, Counter*> job_failures;     // reason
  std::unordered_map<std::string, Counter*> upload_failures;  // reason
  std::unordered_map<std::string, RpcSeries> rpcs;            // method
  Histogram* queue_wait = nullptr;
  Gauge* jobs_queued = nullptr;
  Gauge* jobs_running = nullptr;
  Gauge* workers_busy = nullptr;
  Gauge* workers_total = nullptr;
  Counter* uploads_ok = nullptr;
  Counter* uploads_failed = nullptr;
  Gauge* uploads_in_progress = nullptr;
  Counter* upload_bytes = nullptr;
  Counter* download_bytes = nullptr;
  Gauge* store_bytes = nullptr;
  Gauge* disk_free = nullptr;

  JobSeries& Job(const std::string& format, const std::string& precision) {
    std::string f = Lower(format);
    std::string p = Lower(precision);
    auto it = jobs.find(Key(f, p));
    if (it != jobs.end()) return it->second;
    it = jobs.find(Key(f, kOther));
    if (it != jobs.end()) return it->second;
    return jobs.find(Key(kOther, kOther))->second;
  }

  static Counter* Reason(std::unordered_map<std::string, Counter*>& m, const std::string& reason) {
    std::string r = reason.empty() ? "unknown" : Lower(reason);
    auto it = m.find(r);
    if (it == m.end()) it = m.find(std::string(kOther));
    return it->second;
  }
};

Metrics::Metrics(prometheus::Registry* registry, int workers_total, const std::string& version)
    : impl_(std::make_unique<Impl>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  prometheus::Registry& r = *registry;
  Impl& m = *impl_;

  // --- jobs ---
  auto& submitted = BuildCounter()
                        .Name("quantd_jobs_submitted_total")
                        .Help("Jobs accepted by SubmitJob (new jobs only, not idempotent replays).")
                        .Register(r);
  auto& started = BuildCounter()
                      .Name("quantd_jobs_started_total")
                      .Help("Jobs a worker took off the queue.")
                      .Register(r);
  auto& finished = BuildCounter()
                       .Name("quantd_jobs_finished_total")
                       .Help("Jobs that reached a final state, by status.")
                       .Register(r);
  auto& input_bytes = BuildCounter()
                          .Name("quantd_job_input_bytes_total")
                          .Help("Model bytes read by succeeded jobs.")
                          .Register(r);
  auto& output_bytes = BuildCounter()
                           .Name("quantd_job_output_bytes_total")
                           .Help("Artifact bytes written by succeeded jobs.")
                           .Register(r);
  auto& weights = BuildCounter()
                      .Name("quantd_job_weights_quantized_total")
                      .Help("Weight elements converted by succeeded jobs.")
                      .Register(r);
  auto& duration = BuildHistogram()
                       .Name("quantd_job_duration_seconds")
                       .Help("Run time of succeeded jobs, from worker start to artifact committed.")
                       .Register(r);
  auto& ratio = BuildHistogram()
                    .Name("quantd_job_compression_ratio")
                    .Help("Input bytes / output bytes of succeeded jobs.")
                    .Register(r);

  auto add_pair = [&](std::string_view f, std::string_view p) {
    prometheus::Labels l = {{"format", std::string(f)}, {"precision", std::string(p)}};
    JobSeries s;
    s.submitted = &submitted.Add(l);
    s.started = &started.Add(l);
    for (size_t i = 0; i < kStatuses.size(); ++i) {
      prometheus::Labels ls = l;
      ls["status"] = std::string(kStatuses[i]);
      s.finished[i] = &finished.Add(ls);
    }
    s.input_bytes = &input_bytes.Add(l);
    s.output_bytes = &output_bytes.Add(l);
    s.weights = &weights.Add(l);
    s.duration = &duration.Add(l, kDurationBuckets);
    s.ratio = &ratio.Add(l, kRatioBuckets);
    m.jobs.emplace(Key(f, p), s);
  };
  const std::pair<std::string, PrecisionLabels> formats[] = {
      {core::FormatName(core::ModelFormat::kOnnx), OnnxPrecisionLabels()},
      {core::FormatName(core::ModelFormat::kGguf), GgufPrecisionLabels()},
      {core::FormatName(core::ModelFormat::kMlx), MlxPrecisionLabels()},
  };
  for (const auto& [format, precisions] : formats) {
    for (const std::string& p : precisions.labels) add_pair(format, p);
    add_pair(format, kOther);
    // Other accepted spellings share their label's series.
    for (const auto& [spelling, label] : precisions.spellings) {
      if (spelling == label) continue;
      const JobSeries series = m.jobs.at(Key(format, label));
      m.jobs.emplace(Key(format, spelling), series);
    }
  }
  add_pair(kOther, kOther);

  auto& job_failures = BuildCounter()
                           .Name("quantd_job_failures_total")
                           .Help("Failed jobs by failure class.")
                           .Register(r);
  for (auto reason : kReasons) {
    m.job_failures.emplace(std::string(reason),
                           &job_failures.Add({{"reason", std::string(reason)}}));
  }

  m.queue_wait = &BuildHistogram()
                      .Name("quantd_job_queue_wait_seconds")
                      .Help("Time jobs spent queued before a worker started them.")
                      .Register(r)
                      .Add({}, kDurationBuckets);
  m.jobs_queued = &BuildGauge()
                       .Name("quantd_jobs_queued")
                       .Help("Jobs waiting for a worker.")
                       .Register(r)
                       .Add({});
  m.jobs_running =
      &BuildGauge().Name("quantd_jobs_running").Help("Jobs being run now.").Register(r).Add({});
  m.workers_busy =
      &BuildGauge().Name("quantd_workers_busy").Help("Workers running a job.").Register(r).Add({});
  m.workers_total = &BuildGauge()
                         .Name("quantd_workers")
                         .Help("Workers configured (--workers).")
                         .Register(r)
                         .Add({});
  m.workers_total->Set(workers_total);

  // --- transfers and storage ---
  auto& uploads = BuildCounter()
                      .Name("quantd_uploads_total")
                      .Help("Finished UploadModel streams, by status (succeeded|failed).")
                      .Register(r);
  m.uploads_ok = &uploads.Add({{"status", "succeeded"}});
  m.uploads_failed = &uploads.Add({{"status", "failed"}});
  auto& upload_failures = BuildCounter()
                              .Name("quantd_upload_failures_total")
                              .Help("Failed uploads by failure class.")
                              .Register(r);
  for (auto reason : kReasons) {
    m.upload_failures.emplace(std::string(reason),
                              &upload_failures.Add({{"reason", std::string(reason)}}));
  }
  m.uploads_in_progress = &BuildGauge()
                               .Name("quantd_uploads_in_progress")
                               .Help("UploadModel streams open now.")
                               .Register(r)
                               .Add({});
  m.upload_bytes = &BuildCounter()
                        .Name("quantd_upload_bytes_total")
                        .Help("Model bytes received by UploadModel.")
                        .Register(r)
                        .Add({});
  m.download_bytes = &BuildCounter()
                          .Name("quantd_download_bytes_total")
                          .Help("Artifact bytes sent by DownloadArtifact.")
                          .Register(r)
                          .Add({});
  m.store_bytes = &BuildGauge()
                       .Name("quantd_blob_store_bytes")
                       .Help("Bytes held by the blob store (models and artifacts).")
                       .Register(r)
                       .Add({});
  m.disk_free = &BuildGauge()
                     .Name("quantd_disk_free_bytes")
                     .Help("Free bytes on the file system of the data directory.")
                     .Register(r)
                     .Add({});

  // --- gRPC ---
  auto& requests = BuildCounter()
                       .Name("quantd_grpc_requests_total")
                       .Help("Finished gRPC calls by method and status code.")
                       .Register(r);
  auto& latency = BuildHistogram()
                      .Name("quantd_grpc_request_duration_seconds")
                      .Help("Duration of finished gRPC calls (streams: whole stream).")
                      .Register(r);
  auto add_method = [&](std::string_view method) {
    RpcSeries s;
    for (size_t i = 0; i < kGrpcCodes.size(); ++i) {
      s.requests[i] =
          &requests.Add({{"method", std::string(method)}, {"code", std::string(kGrpcCodes[i])}});
    }
    s.latency = &latency.Add({{"method", std::string(method)}}, kRpcBuckets);
    m.rpcs.emplace(std::string(method), s);
  };
  for (auto method : kRpcMethods) add_method(method);
  add_method(kOther);

  // --- build ---
  BuildGauge()
      .Name("quantd_build_info")
      .Help("Always 1; labels describe the running build.")
      .Register(r)
      .Add({{"version", version},
            {"compiler", __VERSION__},
#ifdef NDEBUG
            {"build_type", "release"}
#else
            {"build_type", "debug"}
#endif
      })
      .Set(1);
}

Metrics::~Metrics() = default;

void Metrics::JobSubmitted(const std::string& format, const std::string& precision) {
  impl_->Job(format, precision).submitted->Increment();
}

void Metrics::JobStarted(const std::string& format, const std::string& precision,
                         double queue_wait_seconds) {
  impl_->Job(format, precision).started->Increment();
  impl_->queue_wait->Observe(std::max(0.0, queue_wait_seconds));
}

void Metrics::JobFinished(const std::string& format, const std::string& precision,
                          const std::string& status, const std::string& reason,
                          double duration_seconds, uint64_t input_bytes, uint64_t output_bytes,
                          uint64_t weights_quantized) {
  JobSeries& s = impl_->Job(format, precision);
  std::string st = Lower(status);
  size_t i = std::find(kStatuses.begin(), kStatuses.end(), st) - kStatuses.begin();
  if (i == kStatuses.size()) i = 1;  // an unknown final state counts as failed
  s.finished[i]->Increment();
  if (kStatuses[i] == "failed") {
    Impl::Reason(impl_->job_failures, reason)->Increment();
    return;
  }
  if (kStatuses[i] != "succeeded") return;
  s.duration->Observe(std::max(0.0, duration_seconds));
  s.input_bytes->Increment(static_cast<double>(input_bytes));
  s.output_bytes->Increment(static_cast<double>(output_bytes));
  s.weights->Increment(static_cast<double>(weights_quantized));
  if (input_bytes > 0 && output_bytes > 0) {
    s.ratio->Observe(static_cast<double>(input_bytes) / static_cast<double>(output_bytes));
  }
}

void Metrics::SetJobsQueued(int64_t n) { impl_->jobs_queued->Set(static_cast<double>(n)); }
void Metrics::SetJobsRunning(int64_t n) { impl_->jobs_running->Set(static_cast<double>(n)); }
void Metrics::SetWorkersBusy(int64_t n) { impl_->workers_busy->Set(static_cast<double>(n)); }

void Metrics::UploadStarted() { impl_->uploads_in_progress->Increment(); }

void Metrics::UploadBytes(uint64_t n) { impl_->upload_bytes->Increment(static_cast<double>(n)); }

void Metrics::UploadFinished(bool ok, const std::string& reason) {
  impl_->uploads_in_progress->Decrement();
  if (ok) {
    impl_->uploads_ok->Increment();
  } else {
    impl_->uploads_failed->Increment();
    Impl::Reason(impl_->upload_failures, reason)->Increment();
  }
}

void Metrics::DownloadBytes(uint64_t n) {
  impl_->download_bytes->Increment(static_cast<double>(n));
}

void Metrics::SetStoreBytes(uint64_t used_bytes, uint64_t free_bytes) {
  impl_->store_bytes->Set(static_cast<double>(used_bytes));
  impl_->disk_free->Set(static_cast<double>(free_bytes));
}

void Metrics::RpcFinished(const std::string& method, const std::string& code, double seconds) {
  auto it = impl_->rpcs.find(method);
  if (it == impl_->rpcs.end()) it = impl_->rpcs.find(std::string(kOther));
  RpcSeries& s = it->second;
  size_t i = std::find(kGrpcCodes.begin(), kGrpcCodes.end(), code) - kGrpcCodes.begin();
  if (i == kGrpcCodes.size()) i = 2;  // UNKNOWN
  s.requests[i]->Increment();
  s.latency->Observe(std::max(0.0, seconds));
}

}  // namespace quantd::server
