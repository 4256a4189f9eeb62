// quantd_service_bench: end-to-end service numbers on loopback.
//
//  1. Throughput: a generated ONNX model of --gib GiB (external data) is
//     uploaded (sha256 on both sides, fsync + atomic commit on the server),
//     converted FP32->FP32 (not timed) and the ~same-size artifact is
//     downloaded (sha256 verified, fsync, atomic rename). Both are compared
//     with `cp` of the same data file in the same run (page cache warm for
//     all three), so the ratios are machine-independent-ish.
//  2. Job overhead: --jobs FP16 jobs on a tiny model, one at a time; the
//     submit-to-final latency seen by the client minus the core's own time.
//
// usage: quantd_service_bench --quantd PATH [--gib 1] [--jobs 20]
//                             [--workdir DIR] [--python /usr/bin/python3]
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "quantd/client/client.h"

namespace {
namespace fs = std::filesystem;
using quantd::client::Client;
namespace v1 = quantd::v1;

// CPU seconds (user + system) used so far by this process (the client) and
// by process `pid` (the server, from /proc/<pid>/stat): what a transfer
// costs independently of how loaded the machine is.
double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(line.substr(close + 2));
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {  // field 3 is the state
    if (i == 14) utime = std::atof(f.c_str());
    if (i == 15) {
      stime = std::atof(f.c_str());
      break;
    }
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int Run(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

pid_t StartServer(const std::string& quantd, const std::string& data, const std::string& port_file,
                  int* port) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* log = std::fopen((data + ".log").c_str(), "w");
    if (log) {
      dup2(fileno(log), 1);
      dup2(fileno(log), 2);
    }
    execl(quantd.c_str(), quantd.c_str(), "serve", "--listen", "127.0.0.1:0", "--data-dir",
          data.c_str(), "--port-file", port_file.c_str(), "--workers", "1", "--min-free-bytes",
          "1G", nullptr);
    _exit(127);
  }
  for (int i = 0; i < 400; ++i) {
    std::ifstream in(port_file);
    if (in >> *port && *port > 0) return pid;
    usleep(25000);
  }
  kill(pid, SIGKILL);
  return -1;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  // As quantd serve does: recycle large transfer buffers (see docs/service.md, Memory).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  std::string quantd;
  std::string workdir = (fs::temp_directory_path() / "quantd-service-bench").string();
  std::string python = "/usr/bin/python3";
  double gib = 1.0;
  int jobs = 20;
  int chunk_kib = 0;  // 0: the client's default
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    std::string v = argv[i + 1];
    if (k == "--quantd")
      quantd = v;
    else if (k == "--workdir")
      workdir = v;
    else if (k == "--python")
      python = v;
    else if (k == "--gib")
      gib = std::atof(v.c_str());
    else if (k == "--jobs")
      jobs = std::atoi(v.c_str());
    else if (k == "--chunk-kib")
      chunk_kib = std::atoi(v.c_str());
  }
  if (quantd.empty()) {
    std::cerr
        << "usage: quantd_service_bench --quantd PATH [--gib 1] [--jobs 20] [--workdir DIR]\n";
    return 2;
  }
  fs::remove_all(workdir);
  fs::create_directories(workdir);
  const std::string data = workdir + "/data";
  int port = 0;
  pid_t pid = StartServer(quantd, data, workdir + "/port", &port);
  if (pid < 0) {
    std::cerr << "quantd did not start\n";
    return 1;
  }
  quantd::client::ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", port);
  if (chunk_kib > 0) options.chunk_bytes = static_cast<size_t>(chunk_kib) << 10;
  auto client_or = Client::Connect(options);
  if (!client_or.ok()) return 1;
  Client& client = **client_or;
  int rc = 0;

  // ---- 1. throughput
  const int dim = 1024;
  const int layers = std::max(1, static_cast<int>(gib * (1 << 30) / (dim * dim * 4.0)));
  const std::string model_dir = workdir + "/model";
  std::cout << "generating a " << layers << "-layer chain model (" << gib << " GiB)...\n";
  if (Run(absl::StrCat(python, " ", QUANTD_SOURCE_DIR, "/tests/integration/gen_chain_model.py ",
                       model_dir, " ", layers, " ", dim)) != 0) {
    std::cerr << "model generation failed\n";
    kill(pid, SIGKILL);
    return 1;
  }
  const std::string onnx = model_dir + "/model.onnx";
  const std::string ext = model_dir + "/model.onnx.data";
  const uint64_t bytes = fs::file_size(onnx) + fs::file_size(ext);
  Run(absl::StrCat("cat ", ext, " > /dev/null"));  // warm the page cache

  double t = Now();
  Run(absl::StrCat("cp ", ext, " ", workdir, "/cp-copy && sync -f ", workdir, "/cp-copy"));
  const double cp_sync_s = Now() - t;
  fs::remove(workdir + "/cp-copy");
  t = Now();
  Run(absl::StrCat("cp ", ext, " ", workdir, "/cp-copy"));
  const double cp_s = Now() - t;
  fs::remove(workdir + "/cp-copy");

  t = Now();
  double client_cpu = SelfCpuSeconds();
  double server_cpu = ProcessCpuSeconds(pid);
  auto upload = client.Upload({onnx, ext});
  const double upload_s = Now() - t;
  const double upload_client_cpu = SelfCpuSeconds() - client_cpu;
  const double upload_server_cpu = ProcessCpuSeconds(pid) - server_cpu;
  if (!upload.ok()) {
    std::cerr << "upload: " << upload.status() << "\n";
    kill(pid, SIGKILL);
    return 1;
  }
  v1::SubmitJobRequest req;
  req.set_model_id(upload->model.model_id());
  req.mutable_recipe()->set_precision(v1::PRECISION_FP32);
  auto job = client.Submit(req);
  auto done = job.ok() ? client.Watch(job->job_id(), nullptr) : job;
  if (!done.ok() || done->state() != v1::JOB_STATE_SUCCEEDED) {
    std::cerr << "job failed\n";
    kill(pid, SIGKILL);
    return 1;
  }
  const uint64_t artifact_bytes = done->artifact().size_bytes();
  // Best of two downloads (the first may overlap the artifact's write-back).
  double download_s = 1e9;
  double download_client_cpu = 0, download_server_cpu = 0;
  absl::StatusOr<quantd::client::DownloadResult> download;
  for (int i = 0; i < 2; ++i) {
    fs::remove_all(workdir + "/download");
    t = Now();
    client_cpu = SelfCpuSeconds();
    server_cpu = ProcessCpuSeconds(pid);
    download = client.Download(done->job_id(), workdir + "/download");
    if (Now() - t < download_s) {
      download_s = Now() - t;
      download_client_cpu = SelfCpuSeconds() - client_cpu;
      download_server_cpu = ProcessCpuSeconds(pid) - server_cpu;
    }
    std::cout << absl::StrFormat("  (download %d: %.2f s)\n", i + 1, Now() - t);
  }
  if (!download.ok()) {
    std::cerr << "download: " << download.status() << "\n";
    rc = 1;
  }
  const double mib = bytes / 1048576.0;
  std::cout << absl::StrFormat(
      "throughput (%.0f MiB model, loopback, sha256 both ends, fsync+atomic rename):\n"
      "  cp (no fsync)        %7.2f s  %7.0f MiB/s\n"
      "  cp + sync            %7.2f s  %7.0f MiB/s\n"
      "  upload               %7.2f s  %7.0f MiB/s  = %.2fx cp, %.2fx cp+sync\n"
      "  download (%4.0f MiB)  %7.2f s  %7.0f MiB/s  = %.2fx cp, %.2fx cp+sync\n"
      "  upload+download      %7.2f s  = %.2fx (2 x cp), %.2fx (2 x cp+sync)\n",
      mib, cp_s, mib / cp_s, cp_sync_s, mib / cp_sync_s, upload_s, mib / upload_s, upload_s / cp_s,
      upload_s / cp_sync_s, artifact_bytes / 1048576.0, download_s,
      artifact_bytes / 1048576.0 / download_s, download_s / cp_s, download_s / cp_sync_s,
      upload_s + download_s, (upload_s + download_s) / (2 * cp_s),
      (upload_s + download_s) / (2 * cp_sync_s));
  std::cout << absl::StrFormat(
      "CPU seconds (user+sys; independent of other load):\n"
      "  upload    client %6.2f  server %6.2f  (%.2f s per GiB)\n"
      "  download  client %6.2f  server %6.2f  (%.2f s per GiB)\n",
      upload_client_cpu, upload_server_cpu,
      (upload_client_cpu + upload_server_cpu) / (bytes / 1073741824.0), download_client_cpu,
      download_server_cpu,
      (download_client_cpu + download_server_cpu) / (artifact_bytes / 1073741824.0));
  fs::remove_all(workdir + "/download");
  fs::remove_all(model_dir);
  (void)client.DeleteJob(done->job_id());
  (void)client.DeleteModel(upload->model.model_id());

  // ---- 2. job overhead
  const std::string tiny =
      std::string(QUANTD_TESTDATA) + "/onnx/genai-tiny-random-gpt2-fp32/past.onnx";
  auto tiny_model = client.Upload({tiny});
  if (!tiny_model.ok()) {
    std::cerr << "upload tiny: " << tiny_model.status() << "\n";
    kill(pid, SIGKILL);
    return 1;
  }
  std::vector<double> total_ms, core_ms, overhead_ms;
  for (int i = 0; i < jobs; ++i) {
    v1::SubmitJobRequest r;
    r.set_model_id(tiny_model->model.model_id());
    r.mutable_recipe()->set_precision(v1::PRECISION_FP16);
    r.mutable_recipe()->add_node_block_list(absl::StrCat("bench-", i));  // distinct jobs
    t = Now();
    auto j = client.Submit(r);
    auto f = j.ok() ? client.Watch(j->job_id(), nullptr) : j;
    const double ms = (Now() - t) * 1000;
    if (!f.ok() || f->state() != v1::JOB_STATE_SUCCEEDED) {
      rc = 1;
      continue;
    }
    total_ms.push_back(ms);
    core_ms.push_back(f->report().seconds() * 1000);
    overhead_ms.push_back(ms - f->report().seconds() * 1000);
  }
  std::cout << absl::StrFormat(
      "job overhead (%d FP16 jobs on a %.0f KiB model, one at a time):\n"
      "  submit->final (client) median %.1f ms, p90 %.1f ms\n"
      "  core::Run time         median %.1f ms\n"
      "  service overhead       median %.1f ms, p90 %.1f ms\n",
      static_cast<int>(total_ms.size()), fs::file_size(tiny) / 1024.0, Median(total_ms),
      Percentile(total_ms, 0.9), Median(core_ms), Median(overhead_ms),
      Percentile(overhead_ms, 0.9));

  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  fs::remove_all(workdir);
  return rc;
}
