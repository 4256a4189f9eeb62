// Unit tests for quantd::server::Metrics: families exist from startup, label
// values stay in their bounded vocabularies, and each call moves the series
// the operations guide says it moves.
#include "quantd/server/metrics.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/gguf/gguf_mix.h"
#include "quantd/core/recipe.h"

namespace quantd::server {
namespace {

using Labels = std::map<std::string, std::string>;

// The one metric of family `name` whose labels are exactly `labels`.
std::optional<prometheus::ClientMetric> Find(const std::vector<prometheus::MetricFamily>& fams,
                                             const std::string& name, const Labels& labels) {
  for (const auto& f : fams) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      Labels got;
      for (const auto& l : m.label) got[l.name] = l.value;
      if (got == labels) return m;
    }
  }
  return std::nullopt;
}

class MetricsTest : public ::testing::Test {
 protected:
  double Counter(const std::string& name, const Labels& labels = {}) {
    auto m = Find(registry_.Collect(), name, labels);
    EXPECT_TRUE(m.has_value()) << name;
    return m ? m->counter.value : -1;
  }
  double Gauge(const std::string& name, const Labels& labels = {}) {
    auto m = Find(registry_.Collect(), name, labels);
    EXPECT_TRUE(m.has_value()) << name;
    return m ? m->gauge.value : -1;
  }
  uint64_t HistogramCount(const std::string& name, const Labels& labels = {}) {
    auto m = Find(registry_.Collect(), name, labels);
    EXPECT_TRUE(m.has_value()) << name;
    return m ? m->histogram.sample_count : 0;
  }
  size_t Series(const std::string& name) {
    for (const auto& f : registry_.Collect()) {
      if (f.name == name) return f.metric.size();
    }
    return 0;
  }

  prometheus::Registry registry_;
  Metrics metrics_{&registry_, 3, "1.2.3"};
};

TEST_F(MetricsTest, EveryFamilyExistsAtStartup) {
  for (const char* name : {"quantd_jobs_submitted_total",
                           "quantd_jobs_started_total",
                           "quantd_jobs_finished_total",
                           "quantd_job_failures_total",
                           "quantd_job_input_bytes_total",
                           "quantd_job_output_bytes_total",
                           "quantd_job_weights_quantized_total",
                           "quantd_job_duration_seconds",
                           "quantd_job_queue_wait_seconds",
                           "quantd_job_compression_ratio",
                           "quantd_jobs_queued",
                           "quantd_jobs_running",
                           "quantd_workers_busy",
                           "quantd_workers",
                           "quantd_uploads_total",
                           "quantd_upload_failures_total",
                           "quantd_uploads_in_progress",
                           "quantd_upload_bytes_total",
                           "quantd_download_bytes_total",
                           "quantd_blob_store_bytes",
                           "quantd_disk_free_bytes",
                           "quantd_grpc_requests_total",
                           "quantd_grpc_request_duration_seconds",
                           "quantd_build_info"}) {
    EXPECT_GT(Series(name), 0u) << name;
  }
  EXPECT_EQ(Counter("quantd_jobs_finished_total",
                    {{"format", "onnx"}, {"precision", "int4"}, {"status", "succeeded"}}),
            0);
  EXPECT_EQ(Gauge("quantd_workers"), 3);
  auto info = Find(registry_.Collect(), "quantd_build_info", {});
  EXPECT_FALSE(info.has_value());  // build_info carries labels
  size_t build_series = Series("quantd_build_info");
  EXPECT_EQ(build_series, 1u);
}

TEST_F(MetricsTest, BuildInfoIsOneWithVersion) {
  for (const auto& f : registry_.Collect()) {
    if (f.name != "quantd_build_info") continue;
    ASSERT_EQ(f.metric.size(), 1u);
    EXPECT_EQ(f.metric[0].gauge.value, 1);
    Labels got;
    for (const auto& l : f.metric[0].label) got[l.name] = l.value;
    EXPECT_EQ(got["version"], "1.2.3");
  }
}

TEST_F(MetricsTest, JobLifecycleMovesTheJobSeries) {
  metrics_.JobSubmitted("onnx", "int4");
  metrics_.JobStarted("onnx", "int4", 0.3);
  metrics_.JobFinished("onnx", "int4", "succeeded", "", 12.5, 700, 100, 42);
  metrics_.JobSubmitted("onnx", "fp16");
  metrics_.JobStarted("onnx", "fp16", 0.1);
  metrics_.JobFinished("onnx", "fp16", "failed", "invalid_model", 0.2, 50, 0, 0);

  Labels int4 = {{"format", "onnx"}, {"precision", "int4"}};
  Labels fp16 = {{"format", "onnx"}, {"precision", "fp16"}};
  EXPECT_EQ(Counter("quantd_jobs_submitted_total", int4), 1);
  EXPECT_EQ(Counter("quantd_jobs_started_total", fp16), 1);
  Labels ok = int4;
  ok["status"] = "succeeded";
  Labels bad = fp16;
  bad["status"] = "failed";
  EXPECT_EQ(Counter("quantd_jobs_finished_total", ok), 1);
  EXPECT_EQ(Counter("quantd_jobs_finished_total", bad), 1);
  EXPECT_EQ(Counter("quantd_job_failures_total", {{"reason", "invalid_model"}}), 1);
  EXPECT_EQ(Counter("quantd_job_input_bytes_total", int4), 700);
  EXPECT_EQ(Counter("quantd_job_output_bytes_total", int4), 100);
  EXPECT_EQ(Counter("quantd_job_weights_quantized_total", int4), 42);
  // Only succeeded jobs feed throughput, duration and ratio.
  EXPECT_EQ(Counter("quantd_job_input_bytes_total", fp16), 0);
  EXPECT_EQ(HistogramCount("quantd_job_duration_seconds", int4), 1u);
  EXPECT_EQ(HistogramCount("quantd_job_duration_seconds", fp16), 0u);
  EXPECT_EQ(HistogramCount("quantd_job_compression_ratio", int4), 1u);
  EXPECT_EQ(HistogramCount("quantd_job_queue_wait_seconds"), 2u);
}

TEST_F(MetricsTest, UnknownLabelValuesFoldIntoOther) {
  size_t before = 0;
  for (const auto& f : registry_.Collect()) before += f.metric.size();

  metrics_.JobSubmitted("ONNX", "INT8");  // case-insensitive
  metrics_.JobSubmitted("gguf", "Q4_K_M");
  metrics_.JobSubmitted("onnx", "job-1234");
  metrics_.JobSubmitted("safetensors", "int4");
  metrics_.JobFinished("onnx", "int8", "exploded", "", 1, 1, 1, 1);
  metrics_.JobFinished("onnx", "int8", "failed", "a reason nobody listed", 1, 1, 1, 1);
  metrics_.JobFinished("onnx", "int8", "failed", "", 1, 1, 1, 1);
  metrics_.UploadStarted();
  metrics_.UploadFinished(false, "weird");
  metrics_.RpcFinished("NoSuchRpc", "OK", 0.01);
  metrics_.RpcFinished("SubmitJob", "NOT_A_CODE", 0.01);

  EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "onnx"}, {"precision", "int8"}}), 1);
  EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "gguf"}, {"precision", "q4_k_m"}}),
            1);
  EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "onnx"}, {"precision", "other"}}),
            1);
  EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "other"}, {"precision", "other"}}),
            1);
  EXPECT_EQ(Counter("quantd_jobs_finished_total",
                    {{"format", "onnx"}, {"precision", "int8"}, {"status", "failed"}}),
            3);
  EXPECT_EQ(Counter("quantd_job_failures_total", {{"reason", "other"}}), 1);
  EXPECT_EQ(Counter("quantd_job_failures_total", {{"reason", "unknown"}}), 2);
  EXPECT_EQ(Counter("quantd_upload_failures_total", {{"reason", "other"}}), 1);
  EXPECT_EQ(Counter("quantd_grpc_requests_total", {{"method", "other"}, {"code", "OK"}}), 1);
  EXPECT_EQ(Counter("quantd_grpc_requests_total", {{"method", "SubmitJob"}, {"code", "UNKNOWN"}}),
            1);

  size_t after = 0;
  for (const auto& f : registry_.Collect()) after += f.metric.size();
  EXPECT_EQ(after, before) << "a call created a new series";
}

// Every GGUF file type name the core accepts (aliases and any case too) is
// counted under its own file type's label, never as "other".
TEST_F(MetricsTest, EveryGgufTypeTheCoreAcceptsHasItsLabel) {
  const std::vector<std::string> names = core::gguf::FileTypeNames();
  ASSERT_GE(names.size(), 21u);
  for (const std::string& name : names) {
    auto ftype = core::gguf::ParseFileType(name);
    ASSERT_TRUE(ftype.ok()) << name;
    const std::string label = absl::AsciiStrToLower(core::gguf::FileTypeName(*ftype));
    const Labels labels = {{"format", "gguf"}, {"precision", label}};
    for (const std::string& spelling : {name, absl::AsciiStrToLower(name)}) {
      const double before = Counter("quantd_jobs_submitted_total", labels);
      metrics_.JobSubmitted("gguf", spelling);
      EXPECT_EQ(Counter("quantd_jobs_submitted_total", labels), before + 1) << spelling;
    }
  }
  EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "gguf"}, {"precision", "other"}}),
            0);
  // Aliases share their file type's series: no "q4_k" series of its own.
  auto alias = Find(registry_.Collect(), "quantd_jobs_submitted_total",
                    {{"format", "gguf"}, {"precision", "q4_k"}});
  EXPECT_FALSE(alias.has_value());
  EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "gguf"}, {"precision", "iq4_nl"}}),
            2);
  EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "gguf"}, {"precision", "q4_k_m"}}),
            4);  // Q4_K_M and its alias Q4_K, each in two spellings
}

TEST_F(MetricsTest, EveryOnnxPrecisionTheCoreNamesHasItsLabel) {
  for (const std::string& name : core::PrecisionNames()) {
    metrics_.JobSubmitted("onnx", name);
    EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "onnx"}, {"precision", name}}), 1)
        << name;
  }
  EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "onnx"}, {"precision", "other"}}),
            0);
}

// MLX jobs are counted by code width or mixed recipe, never as "other".
TEST_F(MetricsTest, EveryMlxPrecisionTheCoreNamesHasItsLabel) {
  const std::vector<std::string> names = core::MlxPrecisionNames();
  ASSERT_EQ(names.size(), 10u);
  for (const std::string& name : names) {
    metrics_.JobSubmitted("mlx", name);
    EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "mlx"}, {"precision", name}}), 1)
        << name;
  }
  EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "mlx"}, {"precision", "other"}}), 0);
  metrics_.JobSubmitted("mlx", "7bit");
  EXPECT_EQ(Counter("quantd_jobs_submitted_total", {{"format", "mlx"}, {"precision", "other"}}), 1);
}

TEST_F(MetricsTest, TransfersAndStorage) {
  metrics_.UploadStarted();
  metrics_.UploadStarted();
  EXPECT_EQ(Gauge("quantd_uploads_in_progress"), 2);
  metrics_.UploadBytes(1000);
  metrics_.UploadFinished(true, "");
  metrics_.UploadFinished(false, "digest_mismatch");
  EXPECT_EQ(Gauge("quantd_uploads_in_progress"), 0);
  EXPECT_EQ(Counter("quantd_upload_bytes_total"), 1000);
  EXPECT_EQ(Counter("quantd_uploads_total", {{"status", "succeeded"}}), 1);
  EXPECT_EQ(Counter("quantd_uploads_total", {{"status", "failed"}}), 1);
  EXPECT_EQ(Counter("quantd_upload_failures_total", {{"reason", "digest_mismatch"}}), 1);
  metrics_.DownloadBytes(77);
  EXPECT_EQ(Counter("quantd_download_bytes_total"), 77);
  metrics_.SetStoreBytes(5, 9);
  EXPECT_EQ(Gauge("quantd_blob_store_bytes"), 5);
  EXPECT_EQ(Gauge("quantd_disk_free_bytes"), 9);
  metrics_.SetJobsQueued(4);
  metrics_.SetJobsRunning(2);
  metrics_.SetWorkersBusy(2);
  EXPECT_EQ(Gauge("quantd_jobs_queued"), 4);
  EXPECT_EQ(Gauge("quantd_jobs_running"), 2);
  EXPECT_EQ(Gauge("quantd_workers_busy"), 2);
}

TEST_F(MetricsTest, RpcLatencyByMethod) {
  metrics_.RpcFinished("GetJob", "OK", 0.002);
  metrics_.RpcFinished("GetJob", "NOT_FOUND", 0.001);
  EXPECT_EQ(Counter("quantd_grpc_requests_total", {{"method", "GetJob"}, {"code", "OK"}}), 1);
  EXPECT_EQ(Counter("quantd_grpc_requests_total", {{"method", "GetJob"}, {"code", "NOT_FOUND"}}),
            1);
  EXPECT_EQ(HistogramCount("quantd_grpc_request_duration_seconds", {{"method", "GetJob"}}), 2u);
}

TEST_F(MetricsTest, ExpositionIsValidText) {
  prometheus::TextSerializer s;
  std::string text = s.Serialize(registry_.Collect());
  EXPECT_THAT(text, ::testing::HasSubstr("# TYPE quantd_jobs_finished_total counter"));
  EXPECT_THAT(text, ::testing::HasSubstr("# TYPE quantd_job_duration_seconds histogram"));
  EXPECT_THAT(text, ::testing::HasSubstr("quantd_job_duration_seconds_bucket{format=\"onnx\","
                                         "precision=\"int4\",le=\"7200\"} 0"));
  EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr("job_id")));
}

}  // namespace
}  // namespace quantd::server
