// Chaos: kill -9 at random moments while clients upload, submit, watch and
// download, restart, and check what must survive. Bounded: a few rounds in
// CI (QUANTD_CHAOS_ROUNDS, default 4); bench/chaos.sh runs more.
//
// Invariants checked after every restart:
//  - no acknowledged upload lost: every model whose upload returned OK is
//    stored and its files hash to what was uploaded;
//  - no acknowledged job lost (GetJob finds every job SubmitJob returned);
//  - every SUCCEEDED job's artifact downloads and verifies (sha256);
// and at the end (a last round with no kill):
//  - no job stuck (all final) and none FAILED (every recipe is valid: a
//    failure could only come from the restarts);
//  - work/ empty, no temp files in models/ or artifacts/;
//  - partial uploads bounded: AbortUpload of the unacknowledged ones leaves
//    no part file.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "quantd/core/base/sha256.h"
#include "test_util.h"

namespace quantd::testing {
namespace {
namespace fs = std::filesystem;

int Rounds() {
  const char* v = std::getenv("QUANTD_CHAOS_ROUNDS");
  return v != nullptr ? std::max(1, std::atoi(v)) : 4;
}

std::vector<v1::Recipe> Recipes() {
  std::vector<v1::Recipe> out;
  for (v1::Precision p : {v1::PRECISION_FP16, v1::PRECISION_INT8, v1::PRECISION_INT4}) {
    v1::Recipe r;
    r.set_precision(p);
    out.push_back(r);
  }
  v1::Recipe search;
  search.set_precision(v1::PRECISION_INT4);
  search.set_algorithm(v1::QUANT_ALGORITHM_SEARCH);
  out.push_back(search);
  v1::Recipe b64 = search;
  b64.set_block_size(64);
  out.push_back(b64);
  v1::Recipe pc;
  pc.set_precision(v1::PRECISION_INT8);
  pc.set_per_channel(true);
  out.push_back(pc);
  return out;
}

TEST(ChaosTest, KillNineAtRandomMomentsKeepsEveryInvariant) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  const std::vector<std::string> args = {"--workers", "2", "--max-job-threads", "2"};
  std::mt19937 rng(static_cast<unsigned>(getpid()));
  const auto chain = MakeChainModel(tmp.path() + "/chain", 48, 384);
  const std::vector<std::string> job_models_paths[] = {{Gpt2Model()}, chain};
  const auto recipes = Recipes();

  std::mutex mu;
  std::map<std::string, std::string> acked_models;  // model id -> sha256 of its file
  std::map<std::string, std::string> blob_sha;      // upload id -> sha256 of its bytes
  std::set<std::string> unacked_uploads;
  std::set<std::string> acked_jobs;
  int kills = 0, uploads_acked = 0, downloads_ok = 0, resumed = 0;

  auto server = std::make_unique<ServerProcess>(data, args);
  ASSERT_TRUE(server->Start().ok());
  std::vector<std::string> job_model_ids;
  {
    auto c = server->NewClient();
    for (const auto& paths : job_models_paths) {
      auto up = c->Upload(paths);
      ASSERT_TRUE(up.ok()) << up.status();
      job_model_ids.push_back(up->model.model_id());
    }
  }

  const int rounds = Rounds();
  for (int round = 0; round <= rounds; ++round) {
    const bool last = round == rounds;
    if (round > 0) {
      server = std::make_unique<ServerProcess>(data, args);
      ASSERT_TRUE(server->Start().ok()) << "restart " << round;
    }
    client::ClientOptions options;
    options.max_attempts = 2;
    options.retry_backoff = absl::Milliseconds(50);
    options.rpc_timeout = absl::Seconds(10);
    auto c = server->NewClient(options);

    // Invariants after the restart.
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& [id, sha] : acked_models) {
        auto m = c->GetModel(id);
        ASSERT_TRUE(m.ok()) << "acknowledged model lost: " << id << " " << m.status();
        const std::string file = data + "/models/" + id.substr(7) + "/" + m->files(0).name();
        auto got = core::Sha256File(file);
        ASSERT_TRUE(got.ok());
        EXPECT_EQ(*got, sha) << "model " << id << " changed";
      }
      for (const auto& id : acked_jobs) {
        auto j = c->GetJob(id);
        ASSERT_TRUE(j.ok()) << "acknowledged job lost: " << id;
        EXPECT_NE(j->state(), v1::JOB_STATE_FAILED) << id << ": " << j->error().message();
      }
    }
    if (last) break;

    // Activity until the kill.
    std::atomic<bool> stop{false};
    auto activity = [&](unsigned seed) {
      std::mt19937 r(seed);
      auto cl = server->NewClient(options);
      for (int step = 0; !stop.load(); ++step) {
        switch (r() % 4) {
          case 0: {  // upload (new, or resume an unacknowledged one)
            std::string id;
            {
              std::lock_guard<std::mutex> lock(mu);
              if (!unacked_uploads.empty() && r() % 2 == 0) {
                id = *unacked_uploads.begin();
              } else {
                id = absl::StrCat("chaos-", seed, "-", step);
              }
            }
            const std::string path = absl::StrCat(tmp.path(), "/blobs/", id, "/model.onnx");
            if (!fs::exists(path)) {
              fs::create_directories(fs::path(path).parent_path());
              std::string bytes((1 + r() % 6) << 20, '\0');
              for (size_t i = 0; i < bytes.size(); i += 64) bytes[i] = static_cast<char>(r());
              std::ofstream(path, std::ios::binary) << bytes;
              std::lock_guard<std::mutex> lock(mu);
              blob_sha[id] = core::Sha256Hex(bytes);
              unacked_uploads.insert(id);
            }
            client::UploadOptions uo;
            uo.upload_id = id;
            auto up = cl->Upload({path}, uo);
            std::lock_guard<std::mutex> lock(mu);
            if (up.ok()) {
              acked_models[up->model.model_id()] = blob_sha[id];
              unacked_uploads.erase(id);
              ++uploads_acked;
              if (up->resumed_from > 0) ++resumed;
            }
            break;
          }
          case 1: {  // submit
            const int m = static_cast<int>(r() % job_model_ids.size());
            auto job = cl->Submit(SubmitRequest(job_model_ids[m], recipes[r() % recipes.size()]));
            if (job.ok()) {
              std::lock_guard<std::mutex> lock(mu);
              acked_jobs.insert(job->job_id());
            }
            break;
          }
          default: {  // download a finished job's artifact (verified)
            std::string id;
            {
              std::lock_guard<std::mutex> lock(mu);
              if (acked_jobs.empty()) break;
              auto it = acked_jobs.begin();
              std::advance(it, r() % acked_jobs.size());
              id = *it;
            }
            auto j = cl->GetJob(id);
            if (!j.ok() || j->state() != v1::JOB_STATE_SUCCEEDED) break;
            const std::string dest = absl::StrCat(tmp.path(), "/dl/", seed, "-", step);
            auto dl = cl->Download(id, dest);
            if (dl.ok()) {
              std::lock_guard<std::mutex> lock(mu);
              ++downloads_ok;
            } else {
              EXPECT_NE(dl.status().code(), absl::StatusCode::kDataLoss) << dl.status();
            }
            fs::remove_all(dest);
            break;
          }
        }
      }
    };
    std::thread a(activity, static_cast<unsigned>(rng()));
    std::thread b(activity, static_cast<unsigned>(rng()));
    usleep(300 * 1000 + rng() % 2500 * 1000);
    server->Kill();
    ++kills;
    stop = true;
    a.join();
    b.join();
  }

  // The last server: everything finishes, nothing failed, nothing left over.
  auto c = server->NewClient();
  std::set<std::string> jobs;
  {
    std::lock_guard<std::mutex> lock(mu);
    jobs = acked_jobs;
  }
  int succeeded = 0;
  for (const auto& id : jobs) {
    auto j = c->Watch(id, nullptr, absl::Seconds(300));
    ASSERT_TRUE(j.ok()) << id << " stuck: " << j.status();
    EXPECT_EQ(j->state(), v1::JOB_STATE_SUCCEEDED) << id << ": " << j->error().message();
    if (j->state() == v1::JOB_STATE_SUCCEEDED) {
      ++succeeded;
      auto dl = c->Download(id, tmp.path() + "/final/" + id);
      EXPECT_TRUE(dl.ok()) << id << ": " << dl.status();
    }
  }
  int committed_unacked = 0;
  for (const auto& id : unacked_uploads) {
    absl::Status st = c->AbortUpload(id);
    if (absl::IsFailedPrecondition(st)) {
      // Committed, but the kill came before the client heard so: the model
      // must be exactly what was sent.
      auto status = c->GetUploadStatus(id);
      ASSERT_TRUE(status.ok() && status->complete()) << id;
      auto m = c->GetModel(status->model_id());
      ASSERT_TRUE(m.ok()) << id << ": " << m.status();
      auto got =
          core::Sha256File(data + "/models/" + m->model_id().substr(7) + "/" + m->files(0).name());
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(*got, blob_sha[id]) << id;
      ++committed_unacked;
      continue;
    }
    EXPECT_TRUE(st.ok() || absl::IsNotFound(st)) << id << ": " << st;
  }
  EXPECT_TRUE(fs::is_empty(data + "/work"));
  int temp_files = 0, part_files = 0;
  for (const char* sub : {"/models", "/artifacts", "/uploads"}) {
    for (const auto& e : fs::recursive_directory_iterator(data + sub)) {
      const std::string name = e.path().filename().string();
      if (name.find(".tmp-") != std::string::npos) ++temp_files;
      if (std::string(sub) == "/uploads" && e.is_regular_file() && name.rfind("f", 0) == 0) {
        ++part_files;
      }
    }
  }
  EXPECT_EQ(temp_files, 0);
  EXPECT_EQ(part_files, 0);
  std::cerr << "chaos: " << kills << " kills, " << uploads_acked << " uploads acknowledged ("
            << resumed << " resumed), " << jobs.size() << " jobs, " << succeeded << " succeeded, "
            << downloads_ok << " verified downloads mid-chaos, "
            << unacked_uploads.size() - committed_unacked << " partial uploads aborted, "
            << committed_unacked << " committed before their acknowledgement\n";
}

}  // namespace
}  // namespace quantd::testing
