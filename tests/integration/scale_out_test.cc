// Integration tests of the scale-out mode: a PostgreSQL server started by
// the test (initdb + pg_ctl on loopback), several real `quantd serve`
// replicas on one shared data directory, and real clients spread over them.
//
//  - 16 clients upload, submit, watch and download on different replicas:
//    every job succeeds exactly once, artifacts byte-identical to
//    `quantd quantize` run offline with the same recipe.
//  - kill -9 of a replica while it runs a job: after its lease expires the
//    others finish it; no job lost or done twice; watches on the survivors
//    see the final state; the killed replica restarts and rejoins.
//  - a replica paused (SIGSTOP) past its lease, then resumed (SIGCONT),
//    cannot commit the job another replica took over.
// Leases are short here (--lease-seconds) so the runs stay short.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "quantd/client/client.h"
#include "quantd/testing/postgres_server.h"
#include "server_process.h"
#include "test_util.h"

namespace quantd::testing {
namespace {
namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Lines of `log` with message `msg` that name `job_id`.
int CountLogLines(const std::string& log, const std::string& msg, const std::string& job_id) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, absl::StrCat("\"msg\":\"", msg, "\"")) &&
        absl::StrContains(line, absl::StrCat("\"job_id\":\"", job_id, "\""))) {
      ++n;
    }
  }
  return n;
}

// True if `downloaded` (the artifact's files) hold the bytes `quantd
// quantize` writes offline with these flags, into a folder of its own under
// `scratch` with the job's output name.
bool SameAsOffline(const std::vector<std::string>& downloaded, const std::string& input,
                   const std::string& scratch, const std::string& flags) {
  fs::create_directories(scratch);
  const std::string out = scratch + "/" + fs::path(downloaded[0]).filename().string();
  if (RunCommand(absl::StrCat(QuantdBin(), " quantize ", input, " -o ", out, " ", flags,
                              " --quiet")) != 0) {
    return false;
  }
  size_t offline_files = 0;
  for (const auto& e : fs::directory_iterator(scratch)) {
    (void)e;
    ++offline_files;
  }
  if (offline_files != downloaded.size()) return false;
  for (const std::string& path : downloaded) {
    const std::string mine = ReadFile(path);
    if (mine.empty() || mine != ReadFile(scratch + "/" + fs::path(path).filename().string())) {
      return false;
    }
  }
  return true;
}

// A job that runs for a few seconds: INT4 with the error search on a chain
// of MatMuls (see durability_test.cc).
v1::Recipe SlowRecipe(const std::string& tag) {
  v1::Recipe r;
  r.set_precision(v1::PRECISION_INT4);
  r.set_algorithm(v1::QUANT_ALGORITHM_SEARCH);
  r.add_exclude_nodes(tag);  // names no node: distinct jobs, same bytes
  return r;
}
constexpr char kSlowFlags[] = "--precision int4 --algorithm search --exclude-node ";

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = PostgresServer::Start();
    ASSERT_TRUE(pg.ok()) << pg.status();
    postgres_ = *std::move(pg);
    ASSERT_TRUE(postgres_->CreateDatabase("quantd").ok());
    data_dir_ = tmp_.path() + "/shared";
  }
  void TearDown() override {
    if (HasFailure()) {
      for (auto& r : replicas_) {
        if (r != nullptr) std::cerr << "---- " << r->log_path() << "\n" << r->ReadLog();
      }
    }
    for (auto& r : replicas_) {
      if (r != nullptr && r->running()) {
        r->Signal(SIGCONT);
        r->Kill();
      }
    }
  }

  // Starts replica `i` (a new one, or again after it stopped).
  ServerProcess* StartReplica(int i, int workers, double lease_seconds,
                              std::vector<std::string> extra = {}) {
    if (static_cast<int>(replicas_.size()) <= i) replicas_.resize(i + 1);
    if (replicas_[i] == nullptr) {
      std::vector<std::string> args{"--workers",       absl::StrCat(workers),
                                    "--job-store",     postgres_->Dsn("quantd"),
                                    "--lease-seconds", absl::StrCat(lease_seconds)};
      args.insert(args.end(), extra.begin(), extra.end());
      replicas_[i] =
          std::make_unique<ServerProcess>(data_dir_, std::move(args), absl::StrCat("replica", i));
    }
    absl::Status st = replicas_[i]->Start();
    EXPECT_TRUE(st.ok()) << st;
    return st.ok() ? replicas_[i].get() : nullptr;
  }

  // The logs of every replica, once each of `job_ids` has its "job finished"
  // line (written just after the final state a watcher sees), or after 5 s.
  std::string LogsAfterFinished(const std::vector<std::string>& job_ids) const {
    std::string logs;
    for (int i = 0; i < 100; ++i) {
      logs = AllLogs();
      bool all = true;
      for (const std::string& id : job_ids)
        all = all && CountLogLines(logs, "job finished", id) > 0;
      if (all) break;
      usleep(50 * 1000);
    }
    return logs;
  }

  std::string AllLogs() const {
    std::string all;
    for (const auto& r : replicas_) {
      if (r != nullptr) all += r->ReadLog();
    }
    return all;
  }

  int ArtifactCount() const {
    int n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(data_dir_ + "/artifacts", ec)) {
      if (e.is_directory()) ++n;
    }
    return n;
  }

  TempDir tmp_;
  std::unique_ptr<PostgresServer> postgres_;  // outlives the replicas
  std::string data_dir_;
  std::vector<std::unique_ptr<ServerProcess>> replicas_;
};

TEST_F(ScaleOutTest, SixteenClientsOnThreeReplicasEveryJobSucceedsOnce) {
  for (int i = 0; i < 3; ++i) ASSERT_NE(StartReplica(i, 2, 5), nullptr);
  constexpr int kClients = 16;
  constexpr int kJobs = 2;
  std::vector<std::string> errors(kClients);
  std::vector<std::vector<std::string>> job_ids(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      // Upload on one replica, submit on the next, watch on the third,
      // download from the first (which may not have run the job).
      auto uploader = replicas_[i % 3]->NewClient();
      auto submitter = replicas_[(i + 1) % 3]->NewClient();
      auto watcher = replicas_[(i + 2) % 3]->NewClient();
      auto upload = uploader->Upload({Gpt2Model()});
      if (!upload.ok()) {
        errors[i] = absl::StrCat("upload: ", upload.status().ToString());
        return;
      }
      for (int j = 0; j < kJobs; ++j) {
        const std::string tag = absl::StrCat("client", i, "-job", j);
        v1::Recipe recipe;
        std::string flags;
        if (j % 2 == 0) {
          recipe.set_precision(v1::PRECISION_FP16);
          recipe.add_node_block_list(tag);
          flags = "--precision fp16 --node-block-list " + tag;
        } else {
          recipe.set_precision(v1::PRECISION_INT8);
          recipe.add_exclude_nodes(tag);
          flags = "--precision int8 --exclude-node " + tag;
        }
        auto job = submitter->Submit(SubmitRequest(upload->model.model_id(), recipe));
        if (!job.ok()) {
          errors[i] = absl::StrCat("submit: ", job.status().ToString());
          return;
        }
        job_ids[i].push_back(job->job_id());
        auto done = watcher->Watch(job->job_id(), nullptr, absl::Seconds(50));
        if (!done.ok() || done->state() != v1::JOB_STATE_SUCCEEDED) {
          errors[i] =
              absl::StrCat("watch: ", done.ok() ? done->DebugString() : done.status().ToString());
          return;
        }
        const std::string dir = absl::StrCat(tmp_.path(), "/out-", i, "-", j);
        auto download = uploader->Download(job->job_id(), dir);
        if (!download.ok()) {
          errors[i] = absl::StrCat("download: ", download.status().ToString());
          return;
        }
        if (!SameAsOffline(download->paths, Gpt2Model(),
                           absl::StrCat(tmp_.path(), "/offline-", i, "-", j), flags)) {
          errors[i] = absl::StrCat("job ", job->job_id(), " (", flags,
                                   "): artifact differs from the offline run");
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(errors[i], "") << "client " << i;

  // The journal: every job once, SUCCEEDED, on its first attempt; one
  // artifact each; each finished by exactly one replica.
  v1::ListJobsRequest list;
  list.set_page_size(1000);
  auto jobs = replicas_[1]->NewClient()->ListJobs(list);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_EQ(jobs->jobs_size(), kClients * kJobs);
  for (const auto& job : jobs->jobs()) {
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.job_id();
    EXPECT_EQ(job.attempts(), 1) << job.job_id();
  }
  EXPECT_EQ(ArtifactCount(), kClients * kJobs);
  std::vector<std::string> all_ids;
  for (const auto& v : job_ids) all_ids.insert(all_ids.end(), v.begin(), v.end());
  const std::string logs = LogsAfterFinished(all_ids);
  std::vector<int> finished_by(3, 0);
  for (int i = 0; i < kClients; ++i) {
    for (const std::string& id : job_ids[i]) {
      EXPECT_EQ(CountLogLines(logs, "job finished", id), 1) << id;
      for (int r = 0; r < 3; ++r) {
        finished_by[r] += CountLogLines(replicas_[r]->ReadLog(), "job finished", id);
      }
    }
  }
  // The queue is shared: more than one replica ran jobs.
  EXPECT_GE(std::count_if(finished_by.begin(), finished_by.end(), [](int n) { return n > 0; }), 2)
      << finished_by[0] << " " << finished_by[1] << " " << finished_by[2];
  std::cerr << "jobs finished per replica: " << finished_by[0] << " " << finished_by[1] << " "
            << finished_by[2] << "\n";
}

TEST_F(ScaleOutTest, KilledReplicaJobsFinishOnTheOthersOnceAndItRejoins) {
  for (int i = 0; i < 3; ++i) ASSERT_NE(StartReplica(i, 1, 2), nullptr);
  auto c = replicas_[1]->NewClient();
  const auto chain = MakeChainModel(tmp_.path() + "/chain", 24, 512);
  auto upload = c->Upload(chain);
  ASSERT_TRUE(upload.ok()) << upload.status();
  constexpr int kJobs = 5;
  std::vector<std::string> ids;
  for (int j = 0; j < kJobs; ++j) {
    auto job = replicas_[j % 3]->NewClient()->Submit(
        SubmitRequest(upload->model.model_id(), SlowRecipe(absl::StrCat("kill", j))));
    ASSERT_TRUE(job.ok()) << job.status();
    ids.push_back(job->job_id());
  }
  // Watch every job on a replica that survives.
  std::vector<absl::StatusOr<v1::Job>> watched(kJobs, absl::UnknownError("not run"));
  std::vector<std::thread> watchers;
  for (int j = 0; j < kJobs; ++j) {
    watchers.emplace_back([&, j] {
      watched[j] = replicas_[2]->NewClient()->Watch(ids[j], nullptr, absl::Seconds(50));
    });
  }
  // Each replica runs one job at a time: with three running, replica 0
  // runs one of them. Kill it there.
  bool three_running = false;
  for (int i = 0; i < 400 && !three_running; ++i) {
    int running = 0;
    for (const std::string& id : ids) {
      auto j = c->GetJob(id);
      if (j.ok() && j->state() == v1::JOB_STATE_RUNNING) ++running;
    }
    three_running = running == 3;
    if (!three_running) usleep(50 * 1000);
  }
  ASSERT_TRUE(three_running);
  replicas_[0]->Kill();
  for (auto& t : watchers) t.join();

  int attempts = 0;
  std::string retried;
  for (int j = 0; j < kJobs; ++j) {
    ASSERT_TRUE(watched[j].ok()) << watched[j].status();
    EXPECT_EQ(watched[j]->state(), v1::JOB_STATE_SUCCEEDED) << watched[j]->DebugString();
    attempts += watched[j]->attempts();
    if (watched[j]->attempts() == 2) retried = ids[j];
  }
  // Exactly one job was interrupted and ran again; none was lost or doubled.
  EXPECT_EQ(attempts, kJobs + 1);
  ASSERT_FALSE(retried.empty());
  EXPECT_EQ(ArtifactCount(), kJobs);
  const std::string logs = LogsAfterFinished(ids);
  for (const std::string& id : ids) EXPECT_EQ(CountLogLines(logs, "job finished", id), 1) << id;
  // The re-run's artifact is the offline bytes.
  auto dl = c->Download(retried, tmp_.path() + "/retried");
  ASSERT_TRUE(dl.ok()) << dl.status();
  const int index = static_cast<int>(std::find(ids.begin(), ids.end(), retried) - ids.begin());
  EXPECT_TRUE(SameAsOffline(dl->paths, chain[0], tmp_.path() + "/offline-retried",
                            absl::StrCat(kSlowFlags, "kill", index)));

  // The killed replica restarts on the same shared directory and takes work.
  ASSERT_NE(StartReplica(0, 1, 2), nullptr);
  replicas_[1]->Terminate();
  replicas_[2]->Terminate();
  auto r0 = replicas_[0]->NewClient();
  auto again = r0->Quantize({Gpt2Model()}, Fp16Recipe(), tmp_.path() + "/rejoined");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->job.state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(ScaleOutTest, PausedReplicaCannotCommitAJobTakenOver) {
  ASSERT_NE(StartReplica(0, 1, 1), nullptr);
  auto c0 = replicas_[0]->NewClient();
  const auto chain = MakeChainModel(tmp_.path() + "/chain", 24, 512);
  auto upload = c0->Upload(chain);
  ASSERT_TRUE(upload.ok()) << upload.status();
  auto job = c0->Submit(SubmitRequest(upload->model.model_id(), SlowRecipe("paused")));
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(WaitForJob(
      c0.get(), job->job_id(), [](const v1::Job& j) { return j.state() == v1::JOB_STATE_RUNNING; },
      30));
  // Replica 0 stops mid-job, past its lease; replica 1 takes the job over.
  replicas_[0]->Signal(SIGSTOP);
  ASSERT_NE(StartReplica(1, 1, 1), nullptr);
  auto c1 = replicas_[1]->NewClient();
  auto done = c1->Watch(job->job_id(), nullptr, absl::Seconds(50));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done->attempts(), 2);
  // Replica 0 resumes: its writes are fenced off; the job keeps the state,
  // attempt and artifact replica 1 recorded.
  replicas_[0]->Signal(SIGCONT);
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    const std::string log = replicas_[0]->ReadLog();
    refused =
        absl::StrContains(log, "job result discarded") || absl::StrContains(log, "lease lost");
    if (!refused) usleep(50 * 1000);
  }
  EXPECT_TRUE(refused) << "replica 0 did not notice that it lost the job";
  usleep(1500 * 1000);  // time for a stale commit, were one possible
  auto after = c1->GetJob(job->job_id());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(after->attempts(), 2);
  EXPECT_EQ(after->end_time_ms(), done->end_time_ms());
  EXPECT_EQ(after->artifact().files(0).sha256(), done->artifact().files(0).sha256());
  EXPECT_EQ(CountLogLines(LogsAfterFinished({job->job_id()}), "job finished", job->job_id()), 1);
  auto dl = c0->Download(job->job_id(), tmp_.path() + "/paused");
  ASSERT_TRUE(dl.ok()) << dl.status();
  EXPECT_TRUE(SameAsOffline(dl->paths, chain[0], tmp_.path() + "/offline-paused",
                            absl::StrCat(kSlowFlags, "paused")));
}

// An upload interrupted on one replica resumes on another (the parts live
// in the shared directory); while a stream on one replica holds the upload,
// a stream on another is refused (the reservation is in the database).
TEST_F(ScaleOutTest, UploadStartedOnOneReplicaResumesOnAnother) {
  for (int i = 0; i < 2; ++i) ASSERT_NE(StartReplica(i, 1, 5), nullptr);
  auto c0 = replicas_[0]->NewClient();
  auto c1 = replicas_[1]->NewClient();
  const auto files = LlamaExtDataModel();
  const uint64_t total = fs::file_size(files[0]) + fs::file_size(files[1]);
  const std::string upload_id = "shared-resume-0001";
  v1::UploadRequest header;
  header.mutable_header()->set_upload_id(upload_id);
  for (const auto& f : files) {
    auto* info = header.mutable_header()->add_files();
    info->set_name(fs::path(f).filename().string());
    info->set_size_bytes(fs::file_size(f));
  }
  const std::string all = ReadFile(files[0]) + ReadFile(files[1]);
  {
    grpc::ClientContext ctx0;
    v1::Model model0;
    auto stream0 = c0->stub()->UploadModel(&ctx0, &model0);
    ASSERT_TRUE(stream0->Write(header));
    v1::UploadRequest chunk;
    chunk.mutable_chunk()->set_offset(0);
    chunk.mutable_chunk()->set_data(all.substr(0, 1000000));
    ASSERT_TRUE(stream0->Write(chunk));
    // Wait until replica 0 has the bytes (GetUploadStatus on replica 1
    // reads them from the shared directory).
    bool seen = false;
    for (int i = 0; i < 100 && !seen; ++i) {
      auto st = c1->GetUploadStatus(upload_id);
      seen = st.ok() && st->committed_bytes() == 1000000u;
      if (!seen) usleep(50 * 1000);
    }
    ASSERT_TRUE(seen);
    {
      grpc::ClientContext ctx1;
      v1::Model model1;
      auto stream1 = c1->stub()->UploadModel(&ctx1, &model1);
      stream1->Write(header);
      stream1->WritesDone();
      EXPECT_EQ(stream1->Finish().error_code(), grpc::StatusCode::ABORTED);
    }
    stream0->WritesDone();
    EXPECT_EQ(stream0->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  client::UploadOptions options;
  options.upload_id = upload_id;
  auto resumed = c1->Upload(files, options);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->resumed_from, 1000000u);
  EXPECT_EQ(resumed->bytes_sent, total - 1000000u);
  auto status = c0->GetUploadStatus(upload_id);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->complete());
  // The model converts on either replica; the artifact downloads from both.
  auto job = c0->Submit(SubmitRequest(resumed->model.model_id(), Fp16Recipe()));
  ASSERT_TRUE(job.ok()) << job.status();
  auto done = c1->Watch(job->job_id(), nullptr, absl::Seconds(50));
  ASSERT_TRUE(done.ok() && done->state() == v1::JOB_STATE_SUCCEEDED);
  for (int r = 0; r < 2; ++r) {
    auto dl = (r == 0 ? c0 : c1)->Download(job->job_id(), absl::StrCat(tmp_.path(), "/dl", r));
    ASSERT_TRUE(dl.ok()) << dl.status();
    EXPECT_TRUE(SameAsOffline(dl->paths, files[0], absl::StrCat(tmp_.path(), "/offline", r),
                              "--precision fp16"));
  }
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// The value of the unlabelled gauge `name` on a /metrics page; -1 if absent.
double GaugeValue(const std::string& page, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (absl::StartsWith(line, name + " ")) {
      double v = -1;
      if (absl::SimpleAtod(line.substr(name.size() + 1), &v)) return v;
    }
  }
  return -1;
}

// quantd_jobs_queued is the depth of the shared queue, read from the
// database: every replica reports the same value, jobs queued anywhere.
TEST_F(ScaleOutTest, QueueDepthGaugeIsTheSharedQueueOnEveryReplica) {
  std::vector<int> metrics_ports;
  for (int i = 0; i < 2; ++i) {
    metrics_ports.push_back(FreePort());
    ASSERT_NE(
        StartReplica(i, 1, 1.5, {"--metrics-listen", absl::StrCat("127.0.0.1:", metrics_ports[i])}),
        nullptr);
  }
  auto c = replicas_[0]->NewClient();
  auto upload = c->Upload(MakeChainModel(tmp_.path() + "/chain", 24, 512));
  ASSERT_TRUE(upload.ok()) << upload.status();
  constexpr int kJobs = 5;
  std::vector<std::string> ids;
  for (int j = 0; j < kJobs; ++j) {  // all submitted to replica 0
    auto job = c->Submit(SubmitRequest(upload->model.model_id(), SlowRecipe(absl::StrCat("q", j))));
    ASSERT_TRUE(job.ok()) << job.status();
    ids.push_back(job->job_id());
  }
  // Both replicas (one worker each) run one job; 3 stay queued. Each
  // replica's gauge shows the database's count, within a refresh.
  bool agreed = false;
  std::vector<double> seen(2, -1);
  for (int i = 0; i < 100 && !agreed; ++i) {
    int queued = 0;
    for (const std::string& id : ids) {
      auto j = c->GetJob(id);
      if (j.ok() && j->state() == v1::JOB_STATE_QUEUED) ++queued;
    }
    for (int r = 0; r < 2; ++r) {
      const std::string page_path = absl::StrCat(tmp_.path(), "/metrics", r);
      RunCommand(absl::StrCat("curl -s -o ", page_path, " http://127.0.0.1:", metrics_ports[r],
                              "/metrics"));
      seen[r] = GaugeValue(ReadFile(page_path), "quantd_jobs_queued");
    }
    agreed = queued == kJobs - 2 && seen[0] == queued && seen[1] == queued;
    if (!agreed) usleep(100 * 1000);
  }
  EXPECT_TRUE(agreed) << "gauges " << seen[0] << " " << seen[1];
  // Cancel everything through replica 1, including the job running on
  // replica 0 (it sees the request at its next heartbeat); the gauges
  // drop to 0 on both.
  auto c1 = replicas_[1]->NewClient();
  for (const std::string& id : ids) ASSERT_TRUE(c1->Cancel(id).ok());
  for (const std::string& id : ids) {
    auto done = c1->Watch(id, nullptr, absl::Seconds(30));
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(done->state(), v1::JOB_STATE_CANCELLED);
  }
  bool zero = false;
  for (int i = 0; i < 50 && !zero; ++i) {
    zero = true;
    for (int r = 0; r < 2; ++r) {
      const std::string page_path = absl::StrCat(tmp_.path(), "/metrics", r);
      RunCommand(absl::StrCat("curl -s -o ", page_path, " http://127.0.0.1:", metrics_ports[r],
                              "/metrics"));
      zero = zero && GaugeValue(ReadFile(page_path), "quantd_jobs_queued") == 0;
    }
    if (!zero) usleep(100 * 1000);
  }
  EXPECT_TRUE(zero);
}

}  // namespace
}  // namespace quantd::testing
