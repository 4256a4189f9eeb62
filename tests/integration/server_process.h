// ServerProcess: runs the real `quantd serve` binary ($QUANTD_BIN) on an
// ephemeral loopback port with its own data directory, for integration
// tests. Supports SIGTERM, SIGKILL and restart on the same data directory.
// With QUANTD_TEST_JOB_STORE=postgres the server keeps its jobs in
// PostgreSQL (a server the test process starts; one database per data
// directory) instead of the embedded journal: the postgres.* tests.
//
// Thread safety: not thread-safe; one test thread drives it.
#ifndef QUANTD_TESTS_INTEGRATION_SERVER_PROCESS_H_
#define QUANTD_TESTS_INTEGRATION_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "quantd/client/client.h"

namespace quantd::testing {

// A fresh temporary directory, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class ServerProcess {
 public:
  // `data_dir` is kept across restarts; `extra_args` go after the defaults.
  // `name` tells apart servers that share one data directory (replicas of
  // the scale-out mode): their port file and log are <data_dir>.<name>.*.
  ServerProcess(std::string data_dir, std::vector<std::string> extra_args = {},
                const std::string& name = "");
  ~ServerProcess();  // SIGKILL if still running

  // Starts quantd and waits until it has written its port file.
  absl::Status Start();
  // SIGTERM and wait for exit (graceful drain); returns the exit status.
  int Terminate();
  // SIGKILL and wait.
  void Kill();
  // Sends `signo` without waiting; WaitForExit() collects the exit status.
  void Signal(int signo);
  int WaitForExit();
  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

  // A client on this server with the given options (target filled in).
  std::unique_ptr<client::Client> NewClient(client::ClientOptions options = {}) const;

 private:
  const std::string data_dir_;
  const std::vector<std::string> extra_args_;
  std::string port_file_;
  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// Environment helpers.
// Whether the servers of this test process keep their jobs in PostgreSQL
// (QUANTD_TEST_JOB_STORE=postgres). There a run a replica lost counts as an
// attempt (the attempt number fences it); the embedded store gives the
// attempt back instead.
bool SharedJobStore();

std::string QuantdBin();
std::string TestData();   // shared test data root
std::string SourceDir();  // repository root
std::string Python();     // python with onnx + numpy

// Runs a shell command; returns its exit code (output goes to the test log).
int RunCommand(const std::string& command);
// node tests/e2e/ort_compare.mjs: true when every output's cosine >= min.
bool OrtOutputsMatch(const std::string& ref, const std::string& test, double min_cosine);

}  // namespace quantd::testing

#endif  // QUANTD_TESTS_INTEGRATION_SERVER_PROCESS_H_
