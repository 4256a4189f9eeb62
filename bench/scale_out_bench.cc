// quantd_scale_out_bench: throughput of tiny jobs with 1, 2, ... N `quantd`
// replicas sharing one PostgreSQL job store and one data directory.
//
// Starts its own PostgreSQL server (initdb + pg_ctl on loopback, as the
// scale-out tests do), then for each replica count R: a fresh database and
// shared data directory, R replicas (`--workers W`), one upload of the tiny
// GPT-2 test model, and --jobs FP16 jobs (distinct recipes, so none is
// deduplicated) submitted by --clients client threads, round-robin over the
// replicas; each client watches its job on the next replica. Reports jobs/s
// (all jobs / wall time from the first submit to the last final event) and
// the p50 / p99 submit-to-done latency seen by the clients.
//
// usage: quantd_scale_out_bench --quantd PATH [--replicas 3] [--jobs 60]
//                               [--clients 8] [--workers 1]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "quantd/client/client.h"
#include "quantd/testing/postgres_server.h"

namespace {
namespace fs = std::filesystem;
namespace v1 = quantd::v1;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

struct Replica {
  pid_t pid = -1;
  int port = 0;
};

Replica StartReplica(const std::string& quantd, const std::string& data, const std::string& name,
                     const std::string& dsn, int workers) {
  const std::string port_file = data + "." + name + ".port";
  std::remove(port_file.c_str());
  Replica r;
  r.pid = fork();
  if (r.pid == 0) {
    FILE* log = std::fopen((data + "." + name + ".log").c_str(), "w");
    if (log) {
      dup2(fileno(log), 1);
      dup2(fileno(log), 2);
    }
    const std::string w = absl::StrCat(workers);
    execl(quantd.c_str(), quantd.c_str(), "serve", "--listen", "127.0.0.1:0", "--data-dir",
          data.c_str(), "--port-file", port_file.c_str(), "--workers", w.c_str(), "--job-store",
          dsn.c_str(), "--min-free-bytes", "256M", "--lease-seconds", "10", nullptr);
    _exit(127);
  }
  for (int i = 0; i < 400; ++i) {
    std::ifstream in(port_file);
    if (in >> r.port && r.port > 0) return r;
    usleep(25000);
  }
  kill(r.pid, SIGKILL);
  r.pid = -1;
  return r;
}

std::unique_ptr<quantd::client::Client> Connect(int port) {
  quantd::client::ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", port);
  auto c = quantd::client::Client::Connect(options);
  return c.ok() ? *std::move(c) : nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  std::string quantd;
  int max_replicas = 3, jobs = 60, clients = 8, workers = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--quantd") quantd = argv[i + 1];
    if (a == "--replicas") max_replicas = std::atoi(argv[i + 1]);
    if (a == "--jobs") jobs = std::atoi(argv[i + 1]);
    if (a == "--clients") clients = std::atoi(argv[i + 1]);
    if (a == "--workers") workers = std::atoi(argv[i + 1]);
  }
  if (quantd.empty()) {
    std::cerr << "usage: quantd_scale_out_bench --quantd PATH [--replicas 3] [--jobs 60] "
                 "[--clients 8] [--workers 1]\n";
    return 2;
  }
  const char* testdata = std::getenv("QUANTD_TESTDATA");
  const std::string model = std::string(testdata != nullptr ? testdata : QUANTD_TESTDATA) +
                            "/onnx/genai-tiny-random-gpt2-fp32/past.onnx";
  auto pg = quantd::testing::PostgresServer::Start();
  if (!pg.ok()) {
    std::cerr << pg.status() << "\n";
    return 1;
  }
  char tmpl[] = "/tmp/quantd-scale-bench-XXXXXX";
  const std::string work = ::mkdtemp(tmpl);
  std::printf(
      "| replicas | workers each | jobs | clients | jobs/s | p50 submit→done | p99 submit→done "
      "|\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int n = 1; n <= max_replicas; ++n) {
    const std::string db = absl::StrCat("bench", n);
    if (!(*pg)->CreateDatabase(db).ok()) return 1;
    const std::string data = absl::StrCat(work, "/shared", n);
    std::vector<Replica> replicas;
    for (int r = 0; r < n; ++r) {
      replicas.push_back(
          StartReplica(quantd, data, absl::StrCat("replica", r), (*pg)->Dsn(db), workers));
      if (replicas.back().pid < 0) {
        std::cerr << "replica did not start; see " << data << ".replica" << r << ".log\n";
        return 1;
      }
    }
    auto uploader = Connect(replicas[0].port);
    auto up = uploader->Upload({model});
    if (!up.ok()) {
      std::cerr << up.status() << "\n";
      return 1;
    }
    std::vector<std::vector<double>> latencies(clients);
    std::atomic<int> next{0};
    std::atomic<int> failures{0};
    const double t0 = Now();
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        std::vector<std::unique_ptr<quantd::client::Client>> conns;
        for (const Replica& r : replicas) conns.push_back(Connect(r.port));
        for (int j = next++; j < jobs; j = next++) {
          v1::SubmitJobRequest req;
          req.set_model_id(up->model.model_id());
          req.mutable_recipe()->set_precision(v1::PRECISION_FP16);
          req.mutable_recipe()->add_node_block_list(absl::StrCat("bench-", n, "-", j));
          const double s = Now();
          auto job = conns[j % n]->Submit(req);
          if (!job.ok()) {
            ++failures;
            continue;
          }
          auto done = conns[(j + 1) % n]->Watch(job->job_id(), nullptr, absl::Seconds(120));
          if (!done.ok() || done->state() != v1::JOB_STATE_SUCCEEDED) {
            ++failures;
            continue;
          }
          latencies[c].push_back(Now() - s);
        }
      });
    }
    for (auto& t : threads) t.join();
    const double wall = Now() - t0;
    std::vector<double> all;
    for (const auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
    std::printf("| %d | %d | %zu%s | %d | %.1f | %.0f ms | %.0f ms |\n", n, workers, all.size(),
                failures ? absl::StrCat(" (", failures.load(), " failed)").c_str() : "", clients,
                all.size() / wall, 1000 * Percentile(all, 0.5), 1000 * Percentile(all, 0.99));
    std::fflush(stdout);
    for (const Replica& r : replicas) {
      kill(r.pid, SIGTERM);
      waitpid(r.pid, nullptr, 0);
    }
  }
  if (std::getenv("QUANTD_BENCH_KEEP") != nullptr) {
    std::cerr << "replica logs kept in " << work << "\n";
  } else {
    std::error_code ec;
    fs::remove_all(work, ec);
  }
  return 0;
}
