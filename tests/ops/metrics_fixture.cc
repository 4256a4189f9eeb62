// metrics_fixture: serves quantd's Metrics on a real prometheus::Exposer and
// replays a fixed, known script of calls, so the dashboard's queries can be
// checked through a real Prometheus without the service
// (tests/ops/dashboard_fixture_test.py).
//
//   metrics_fixture HOST:PORT
// Prints "listening PORT" once /metrics is up (PORT 0 picks one). Then, for
// each line read from stdin: "run" replays the script once and prints "done";
// end of input exits.
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <iostream>
#include <memory>
#include <string>

#include "quantd/server/metrics.h"

namespace {

// One replay. tests/ops/dashboard_fixture_test.py holds the matching counts.
void Replay(quantd::server::Metrics& m) {
  m.SetJobsQueued(0);
  m.SetWorkersBusy(0);
  // Uploads: two good models, one with a bad digest.
  for (int i = 0; i < 3; ++i) m.UploadStarted();
  m.UploadBytes(600000);
  m.UploadBytes(2166000);
  m.UploadBytes(99839);
  m.UploadFinished(true, "");
  m.UploadFinished(true, "");
  m.UploadFinished(false, "digest_mismatch");
  m.RpcFinished("UploadModel", "OK", 0.05);
  m.RpcFinished("UploadModel", "OK", 0.2);
  m.RpcFinished("UploadModel", "DATA_LOSS", 0.01);
  m.SetStoreBytes(2766000, 50'000'000'000ULL);

  // Jobs: fp16, int8, int4 succeed; one int4 job fails on a corrupt model.
  struct Job {
    const char* precision;
    const char* status;
    const char* reason;
    double wait, seconds;
    uint64_t in, out, weights;
  };
  const Job jobs[] = {
      {"fp16", "succeeded", "", 0.02, 0.4, 578141, 290000, 144000},
      {"int8", "succeeded", "", 0.3, 0.6, 578141, 150000, 144000},
      {"int4", "succeeded", "", 0.6, 0.9, 578141, 90000, 144000},
      {"int4", "failed", "invalid_model", 0.9, 0.05, 1000, 0, 0},
  };
  for (const Job& j : jobs) {
    m.JobSubmitted("onnx", j.precision);
    m.RpcFinished("SubmitJob", "OK", 0.003);
  }
  m.SetJobsQueued(4);
  for (const Job& j : jobs) {
    m.JobStarted("onnx", j.precision, j.wait);
    m.SetWorkersBusy(1);
    m.JobFinished("onnx", j.precision, j.status, j.reason, j.seconds, j.in, j.out, j.weights);
    m.SetWorkersBusy(0);
    m.RpcFinished("WatchJob", "OK", j.wait + j.seconds);
  }
  m.SetJobsQueued(0);
  m.RpcFinished("GetJob", "NOT_FOUND", 0.001);
  m.DownloadBytes(90000);
  m.RpcFinished("DownloadArtifact", "OK", 0.02);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: metrics_fixture HOST:PORT\n";
    return 2;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  quantd::server::Metrics metrics(registry.get(), 2, "fixture");
  prometheus::Exposer exposer(argv[1]);
  exposer.RegisterCollectable(registry);
  std::cout << "listening " << exposer.GetListeningPorts().at(0) << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "run") {
      Replay(metrics);
      std::cout << "done" << std::endl;
    }
  }
  return 0;
}
