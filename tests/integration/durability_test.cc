// Integration tests: cancellation, kill -9 and SIGTERM of the real server.
//
// A slow job is INT4 with the error-search algorithm on a generated chain of
// MatMuls (several seconds of CPU), so it is reliably RUNNING when the test
// cancels it or kills the server.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/client/client.h"
#include "server_process.h"
#include "test_util.h"

namespace quantd::testing {
namespace {
namespace fs = std::filesystem;

// Layers of the chain model for a job that runs for seconds (INT4 search is
// ~45 ms per 512x512 layer on one core today; raise this if kernels get faster).
constexpr int kSlowLayers = 64;

v1::Recipe SlowRecipe() {
  v1::Recipe r;
  r.set_precision(v1::PRECISION_INT4);
  r.set_algorithm(v1::QUANT_ALGORITHM_SEARCH);
  return r;
}

bool IsRunning(const v1::Job& j) { return j.state() == v1::JOB_STATE_RUNNING; }
bool IsFinal(const v1::Job& j) {
  return j.state() == v1::JOB_STATE_SUCCEEDED || j.state() == v1::JOB_STATE_FAILED ||
         j.state() == v1::JOB_STATE_CANCELLED;
}

TEST(DurabilityTest, CancelRunningJobReachesCore) {
  TempDir tmp;
  ServerProcess server(tmp.path() + "/data", {"--workers", "1"});
  ASSERT_TRUE(server.Start().ok());
  auto c = server.NewClient();
  auto files = MakeChainModel(tmp.path() + "/chain", kSlowLayers, 512);
  auto upload = c->Upload(files);
  ASSERT_TRUE(upload.ok()) << upload.status();
  auto job = c->Submit(SubmitRequest(upload->model.model_id(), SlowRecipe()));
  ASSERT_TRUE(job.ok()) << job.status();
  // A second job queued behind it, cancelled before it starts.
  auto queued = c->Submit(SubmitRequest(upload->model.model_id(), Fp16Recipe()));
  ASSERT_TRUE(queued.ok());
  ASSERT_TRUE(WaitForJob(c.get(), job->job_id(), IsRunning, 30));
  usleep(300 * 1000);
  const absl::Time t0 = absl::Now();
  auto cancelled_queued = c->Cancel(queued->job_id());
  ASSERT_TRUE(cancelled_queued.ok());
  EXPECT_EQ(cancelled_queued->state(), v1::JOB_STATE_CANCELLED);
  ASSERT_TRUE(c->Cancel(job->job_id()).ok());
  auto done = c->Watch(job->job_id(), nullptr, absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5)) << "cancel did not reach the core quickly";
  EXPECT_FALSE(fs::exists(tmp.path() + "/data/artifacts/" + job->job_id()));
  EXPECT_TRUE(fs::is_empty(tmp.path() + "/data/work"));
  // The worker is free again.
  auto next = c->Quantize({Gpt2Model()}, Fp16Recipe(), tmp.path() + "/out");
  EXPECT_TRUE(next.ok()) << next.status();
}

TEST(DurabilityTest, ClientCancelInFlightInterruptsWatchOnly) {
  TempDir tmp;
  ServerProcess server(tmp.path() + "/data", {"--workers", "1"});
  ASSERT_TRUE(server.Start().ok());
  auto c = server.NewClient();
  auto chain = c->Upload(MakeChainModel(tmp.path() + "/chain", kSlowLayers / 2, 512));
  ASSERT_TRUE(chain.ok());
  auto job = c->Submit(SubmitRequest(chain->model.model_id(), SlowRecipe()));
  ASSERT_TRUE(job.ok());
  absl::StatusOr<v1::Job> watched;
  std::atomic<bool> running_seen{false};
  std::thread watcher([&] {
    watched = c->Watch(job->job_id(), [&](const v1::JobEvent& e) {
      if (e.job().state() == v1::JOB_STATE_RUNNING) running_seen = true;
    });
  });
  for (int i = 0; i < 600 && !running_seen; ++i) usleep(50 * 1000);
  ASSERT_TRUE(running_seen);  // the Watch call is in flight
  const absl::Time t0 = absl::Now();
  c->CancelInFlight();
  watcher.join();
  EXPECT_EQ(watched.status().code(), absl::StatusCode::kCancelled) << watched.status();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(2));
  // Only the client's call was interrupted: the job runs on, and the same
  // client works again.
  auto done = c->Watch(job->job_id(), nullptr, absl::Seconds(120));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED);
}

TEST(DurabilityTest, KillDashNineWithQueuedAndRunningJobsRecovers) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  auto server = std::make_unique<ServerProcess>(data, std::vector<std::string>{"--workers", "1"});
  ASSERT_TRUE(server->Start().ok());
  auto c = server->NewClient();
  auto chain = c->Upload(MakeChainModel(tmp.path() + "/chain", kSlowLayers, 512));
  auto gpt2 = c->Upload({Gpt2Model()});
  ASSERT_TRUE(chain.ok() && gpt2.ok());
  auto running = c->Submit(SubmitRequest(chain->model.model_id(), SlowRecipe()));
  ASSERT_TRUE(running.ok());
  std::vector<std::string> queued;
  for (v1::Precision p : {v1::PRECISION_FP16, v1::PRECISION_INT8, v1::PRECISION_INT4}) {
    v1::Recipe r;
    r.set_precision(p);
    auto j = c->Submit(SubmitRequest(gpt2->model.model_id(), r));
    ASSERT_TRUE(j.ok()) << j.status();
    queued.push_back(j->job_id());
  }
  ASSERT_TRUE(WaitForJob(c.get(), running->job_id(), IsRunning, 30));
  usleep(500 * 1000);
  server->Kill();  // kill -9 mid-job

  // Nothing half-written: no artifact for the running job, no stray files.
  EXPECT_FALSE(fs::exists(data + "/artifacts/" + running->job_id()));

  server = std::make_unique<ServerProcess>(data, std::vector<std::string>{"--workers", "2"});
  ASSERT_TRUE(server->Start().ok());
  c = server->NewClient();
  std::vector<std::string> all = queued;
  all.push_back(running->job_id());
  for (const std::string& id : all) {
    auto job = c->Watch(id, nullptr, absl::Seconds(120));
    ASSERT_TRUE(job.ok()) << id << ": " << job.status();
    ASSERT_EQ(job->state(), v1::JOB_STATE_SUCCEEDED) << id << ": " << job->error().message();
    auto download = c->Download(id, tmp.path() + "/out-" + id);  // verifies sha256
    ASSERT_TRUE(download.ok()) << id << ": " << download.status();
  }
  auto rerun = c->GetJob(running->job_id());
  ASSERT_TRUE(rerun.ok());
  // The kill ended the first run, not the job: only the run that finished
  // is charged (with the shared store, the lost lease counts too).
  EXPECT_EQ(rerun->attempts(), SharedJobStore() ? 2 : 1);
  EXPECT_EQ(rerun->crashes(), 0);
  EXPECT_THAT(server->ReadLog(), ::testing::HasSubstr("requeued"));
  EXPECT_TRUE(OrtOutputsMatch(Gpt2Model(), tmp.path() + "/out-" + queued[0] + "/past.onnx", 0.99));
}

TEST(DurabilityTest, WatchReattachesAcrossKillAndRestart) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  auto server = std::make_unique<ServerProcess>(data, std::vector<std::string>{"--workers", "1"});
  ASSERT_TRUE(server->Start().ok());
  const int port = server->port();
  client::ClientOptions options;
  options.retry_backoff = absl::Milliseconds(100);
  auto c = server->NewClient(options);  // one client (one channel) for the whole test
  auto chain = c->Upload(MakeChainModel(tmp.path() + "/chain", kSlowLayers, 512));
  ASSERT_TRUE(chain.ok());
  auto job = c->Submit(SubmitRequest(chain->model.model_id(), SlowRecipe()));
  ASSERT_TRUE(job.ok());
  std::vector<v1::JobEvent> events;
  absl::StatusOr<v1::Job> watched;
  std::thread watcher([&] {
    watched = c->Watch(
        job->job_id(), [&](const v1::JobEvent& e) { events.push_back(e); }, absl::Seconds(120));
  });
  ASSERT_TRUE(WaitForJob(c.get(), job->job_id(), IsRunning, 30));
  usleep(300 * 1000);
  server->Kill();
  server = std::make_unique<ServerProcess>(
      data,
      std::vector<std::string>{"--workers", "1", "--listen", absl::StrCat("127.0.0.1:", port)});
  ASSERT_TRUE(server->Start().ok()) << "could not restart on the same port";
  watcher.join();
  ASSERT_TRUE(watched.ok()) << watched.status();
  EXPECT_EQ(watched->state(), v1::JOB_STATE_SUCCEEDED) << watched->error().message();
  EXPECT_EQ(watched->attempts(), SharedJobStore() ? 2 : 1);
  if (!SharedJobStore()) EXPECT_EQ(watched->interruptions(), 1);  // killed while it ran alone
  bool saw_progress = false;
  for (const auto& e : events) {
    if (e.job().state() == v1::JOB_STATE_RUNNING && e.job().progress().tensors_total() > 0) {
      saw_progress = true;
    }
  }
  EXPECT_TRUE(saw_progress) << "no progress events with tensor counts";
}

TEST(DurabilityTest, SigtermRequeuesRunningJobAndRestartFinishesIt) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  auto server = std::make_unique<ServerProcess>(
      data, std::vector<std::string>{"--workers", "1", "--shutdown-grace-seconds", "0"});
  ASSERT_TRUE(server->Start().ok());
  auto c = server->NewClient();
  auto chain = c->Upload(MakeChainModel(tmp.path() + "/chain", kSlowLayers, 512));
  ASSERT_TRUE(chain.ok());
  auto job = c->Submit(SubmitRequest(chain->model.model_id(), SlowRecipe()));
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(WaitForJob(c.get(), job->job_id(), IsRunning, 30));
  const absl::Time t0 = absl::Now();
  EXPECT_EQ(server->Terminate(), 0);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(10));
  EXPECT_THAT(server->ReadLog(), ::testing::HasSubstr("job requeued at shutdown"));

  server = std::make_unique<ServerProcess>(data, std::vector<std::string>{"--workers", "1"});
  ASSERT_TRUE(server->Start().ok());
  c = server->NewClient();
  auto done = c->Watch(job->job_id(), nullptr, absl::Seconds(120));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED) << done->error().message();
  // A clean drain charges nothing: only the run that finished counts (the
  // shared store keeps the drained attempt's number: it fences that run).
  EXPECT_EQ(done->attempts(), SharedJobStore() ? 2 : 1);
  EXPECT_EQ(done->interruptions(), 0);
}

TEST(DurabilityTest, DrainingServerRefusesNewWorkButFinishesRunningJob) {
  TempDir tmp;
  ServerProcess server(tmp.path() + "/data", {"--workers", "1", "--shutdown-grace-seconds", "60"});
  ASSERT_TRUE(server.Start().ok());
  auto c = server.NewClient();
  auto chain = c->Upload(MakeChainModel(tmp.path() + "/chain", kSlowLayers / 2, 512));
  ASSERT_TRUE(chain.ok());
  auto job = c->Submit(SubmitRequest(chain->model.model_id(), SlowRecipe()));
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(WaitForJob(c.get(), job->job_id(), IsRunning, 30));
  server.Signal(SIGTERM);
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    auto st = c->Submit(SubmitRequest(chain->model.model_id(), Fp16Recipe())).status();
    refused = absl::IsUnavailable(st);
    usleep(20 * 1000);
  }
  EXPECT_TRUE(refused) << "SubmitJob was not refused while draining";
  EXPECT_EQ(server.WaitForExit(), 0);
  EXPECT_THAT(server.ReadLog(), ::testing::HasSubstr("draining"));
  EXPECT_THAT(server.ReadLog(), ::testing::Not(::testing::HasSubstr("requeued at shutdown")));
  // The running job finished within the grace period.
  ServerProcess again(tmp.path() + "/data");
  ASSERT_TRUE(again.Start().ok());
  auto done = again.NewClient()->GetJob(job->job_id());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED);
}

TEST(DurabilityTest, UploadResumesAfterServerKillAndRestart) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  auto server = std::make_unique<ServerProcess>(data);
  ASSERT_TRUE(server->Start().ok());
  const int port = server->port();
  auto files = MakeChainModel(tmp.path() + "/chain", 192, 512);  // 192 MiB
  client::ClientOptions options;
  options.retry_backoff = absl::Milliseconds(300);
  options.max_attempts = 8;
  options.chunk_bytes = 32 << 10;  // many small messages: the kill lands mid-upload
  auto c = server->NewClient(options);
  client::UploadOptions upload_options;
  upload_options.upload_id = "kill-during-upload";
  absl::StatusOr<client::UploadResult> result;
  std::thread uploader([&] { result = c->Upload(files, upload_options); });
  // Kill once some bytes are committed.
  for (int i = 0; i < 400; ++i) {
    auto st = c->GetUploadStatus("kill-during-upload");
    if (st.ok() && st->committed_bytes() > (16u << 20)) break;
    usleep(10 * 1000);
  }
  server->Kill();
  server = std::make_unique<ServerProcess>(
      data, std::vector<std::string>{"--listen", absl::StrCat("127.0.0.1:", port)});
  ASSERT_TRUE(server->Start().ok());
  uploader.join();
  ASSERT_TRUE(result.ok()) << result.status();
  const uint64_t total =
      std::filesystem::file_size(files[0]) + std::filesystem::file_size(files[1]);
  EXPECT_LT(result->bytes_sent, 2 * total);
  // The restarted server saw a resumed upload (committed_bytes > 0 at open).
  EXPECT_THAT(server->ReadLog(),
              ::testing::ContainsRegex("upload opened.*\"committed_bytes\":\"[1-9]"));
  auto fresh = c->Upload(files);  // same content: same model id
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->model.model_id(), result->model.model_id());
}

TEST(DurabilityTest, PriorityRunsBeforeFifo) {
  TempDir tmp;
  ServerProcess server(tmp.path() + "/data", {"--workers", "1"});
  ASSERT_TRUE(server.Start().ok());
  auto c = server.NewClient();
  auto chain = c->Upload(MakeChainModel(tmp.path() + "/chain", kSlowLayers / 2, 512));
  auto gpt2 = c->Upload({Gpt2Model()});
  ASSERT_TRUE(chain.ok() && gpt2.ok());
  auto blocker = c->Submit(SubmitRequest(chain->model.model_id(), SlowRecipe()));
  ASSERT_TRUE(blocker.ok());
  ASSERT_TRUE(WaitForJob(c.get(), blocker->job_id(), IsRunning, 30));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    v1::SubmitJobRequest req = SubmitRequest(gpt2->model.model_id(), Fp16Recipe());
    req.mutable_recipe()->add_node_block_list("n" + std::to_string(i));
    req.set_priority(i == 2 ? 10 : 0);
    auto j = c->Submit(req);
    ASSERT_TRUE(j.ok());
    ids.push_back(j->job_id());
  }
  for (const auto& id : ids) ASSERT_TRUE(WaitForJob(c.get(), id, IsFinal, 120));
  auto j0 = c->GetJob(ids[0]);
  auto j1 = c->GetJob(ids[1]);
  auto j2 = c->GetJob(ids[2]);
  EXPECT_LE(j2->start_time_ms(), j0->start_time_ms());  // priority 10 first
  EXPECT_LE(j0->start_time_ms(), j1->start_time_ms());  // then FIFO
}

namespace {
// What the server's fault handler writes when a job's worker thread faults
// (crash_record.h); written by hand between a kill and the restart.
void WriteCrashRecord(const std::string& data, const std::string& faulting,
                      const std::vector<std::string>& running) {
  std::ofstream out(data + "/crash.record");
  out << "signal 11\nfaulting " << faulting << "\n";
  for (const auto& id : running) out << "running " << id << "\n";
}
}  // namespace

TEST(DurabilityTest, AJobThatKeepsCrashingTheServerIsQuarantinedAndTheOtherFinishes) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  const std::vector<std::string> args = {"--workers", "2", "--max-job-threads", "2"};
  auto server = std::make_unique<ServerProcess>(data, args);
  ASSERT_TRUE(server->Start().ok());
  auto c = server->NewClient();
  auto chain = c->Upload(MakeChainModel(tmp.path() + "/chain", kSlowLayers, 512));
  ASSERT_TRUE(chain.ok());
  auto crasher = c->Submit(SubmitRequest(chain->model.model_id(), SlowRecipe()));
  v1::Recipe other = SlowRecipe();
  other.set_block_size(64);
  auto victim = c->Submit(SubmitRequest(chain->model.model_id(), other));
  ASSERT_TRUE(crasher.ok() && victim.ok());
  for (int round = 1; round <= 2; ++round) {
    ASSERT_TRUE(WaitForJob(c.get(), crasher->job_id(), IsRunning, 60));
    ASSERT_TRUE(WaitForJob(c.get(), victim->job_id(), IsRunning, 60));
    server->Kill();
    WriteCrashRecord(data, crasher->job_id(), {crasher->job_id(), victim->job_id()});
    server = std::make_unique<ServerProcess>(data, args);
    ASSERT_TRUE(server->Start().ok());
    c = server->NewClient();
    auto j = c->GetJob(crasher->job_id());
    ASSERT_TRUE(j.ok());
    EXPECT_EQ(j->crashes(), round);
  }
  auto quarantined = c->GetJob(crasher->job_id());
  ASSERT_TRUE(quarantined.ok());
  EXPECT_EQ(quarantined->state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(quarantined->error().code(), "ABORTED");
  EXPECT_THAT(quarantined->error().message(), ::testing::HasSubstr("quarantined"));
  EXPECT_THAT(server->ReadLog(), ::testing::HasSubstr("job quarantined"));
  EXPECT_FALSE(fs::exists(data + "/crash.record"));
  auto done = c->Watch(victim->job_id(), nullptr, absl::Seconds(180));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED) << done->error().message();
  EXPECT_EQ(done->attempts(), 1);  // the two runs the other job's crashes ended are given back
  EXPECT_EQ(done->crashes(), 0);
}

}  // namespace
}  // namespace quantd::testing
