#include "server_process.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "quantd/testing/postgres_server.h"

namespace quantd::testing {
namespace fs = std::filesystem;

namespace {
std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : fallback;
}

// With QUANTD_TEST_JOB_STORE=postgres, the arguments that put a server's
// jobs in PostgreSQL: one PostgreSQL server for the test process (started
// on first use, stopped at exit), one database per data directory, so a
// restart on the same directory finds its jobs. Short leases, so a job of
// a killed server is requeued within seconds. An error when PostgreSQL
// cannot start (the test fails; nothing is skipped).
absl::StatusOr<std::vector<std::string>> JobStoreArgs(const std::string& data_dir) {
  if (Env("QUANTD_TEST_JOB_STORE", "") != "postgres") return std::vector<std::string>{};
  // Destroyed (the server stopped) when the test process exits.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start();
  if (!server.ok()) return server.status();
  const std::string db = absl::StrCat("d", absl::Hex(std::hash<std::string>()(data_dir)));
  (void)(*server)->CreateDatabase(db);  // exists already after a restart
  return std::vector<std::string>{"--job-store", (*server)->Dsn(db), "--lease-seconds", "2"};
}
}  // namespace

bool SharedJobStore() { return Env("QUANTD_TEST_JOB_STORE", "") == "postgres"; }

std::string QuantdBin() { return Env("QUANTD_BIN", QUANTD_BIN_DEFAULT); }
std::string TestData() { return Env("QUANTD_TESTDATA", QUANTD_TESTDATA); }
std::string SourceDir() { return Env("QUANTD_SOURCE_DIR", QUANTD_SOURCE_DIR_DEFAULT); }
std::string Python() { return Env("QUANTD_PYTHON", "/usr/bin/python3"); }

int RunCommand(const std::string& command) {
  int rc = std::system(command.c_str());
  if (rc == -1) return -1;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

bool OrtOutputsMatch(const std::string& ref, const std::string& test, double min_cosine) {
  std::string cmd =
      absl::StrCat("cd ", SourceDir(), "/tests/e2e && node ort_compare.mjs --ref '", ref,
                   "' --test '", test, "' --min-cosine ", min_cosine, " > /dev/null 2>&1");
  return RunCommand(cmd) == 0;
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "quantd-it-XXXXXX").string();
  char* p = mkdtemp(tmpl.data());
  path_ = p != nullptr ? p : "";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

ServerProcess::ServerProcess(std::string data_dir, std::vector<std::string> extra_args,
                             const std::string& name)
    : data_dir_(std::move(data_dir)), extra_args_(std::move(extra_args)) {
  const std::string base = name.empty() ? data_dir_ : data_dir_ + "." + name;
  port_file_ = base + ".port";
  log_path_ = base + ".log";
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Kill();
}

absl::Status ServerProcess::Start() {
  ::unlink(port_file_.c_str());
  std::vector<std::string> args = {QuantdBin(),
                                   "serve",
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--data-dir",
                                   data_dir_,
                                   "--port-file",
                                   port_file_,
                                   "--min-free-bytes",
                                   "64M",
                                   "--shutdown-grace-seconds",
                                   "5"};
  auto store_args = JobStoreArgs(data_dir_);
  if (!store_args.ok()) return store_args.status();
  args.insert(args.end(), store_args->begin(), store_args->end());
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    FILE* log = std::fopen(log_path_.c_str(), "a");
    if (log != nullptr) {
      dup2(fileno(log), 1);
      dup2(fileno(log), 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  for (int i = 0; i < 300; ++i) {
    std::ifstream in(port_file_);
    int port = 0;
    if (in >> port && port > 0) {
      port_ = port;
      return absl::OkStatus();
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("quantd exited early; log:\n", ReadLog()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("quantd did not start; log:\n", ReadLog()));
}

int ServerProcess::Terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void ServerProcess::Signal(int signo) {
  if (pid_ > 0) ::kill(pid_, signo);
}

int ServerProcess::WaitForExit() {
  if (pid_ <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string ServerProcess::ReadLog() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<client::Client> ServerProcess::NewClient(client::ClientOptions options) const {
  options.target = target();
  auto c = client::Client::Connect(options);
  return c.ok() ? *std::move(c) : nullptr;
}

}  // namespace quantd::testing
