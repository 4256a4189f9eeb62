// ServeConfig: every setting of `quantd serve`, from defaults, then
// environment variables (QUANTD_*), then command-line flags (highest).
//
// Thread safety: plain data.
#ifndef QUANTD_SERVER_CONFIG_H_
#define QUANTD_SERVER_CONFIG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace quantd::server {

struct ServeConfig {
  std::string listen = "127.0.0.1:7443";
  std::string data_dir = "./quantd-data";
  // "sqlite": the embedded journal (one server per data directory), or a
  // postgres:// URI: a job store and queue shared by replicas that share
  // one data directory (scale-out mode, docs/scale-out.md).
  std::string job_store = "sqlite";
  // PostgreSQL job store: a running job's lease (renewed every third of it).
  double lease_seconds = 30;
  int workers = 2;  // capped by the thread budget below
  // The compute budget B: threads computing for all running jobs together
  // (0: the machine's hardware threads). At most min(workers, B) jobs run at
  // once; a job's recipe.threads is a hint, capped so that the running jobs'
  // threads sum to <= B (rule in worker_pool.h). Not per job.
  int max_job_threads = 0;
  std::string metrics_listen;  // empty: no /metrics endpoint
  uint64_t max_upload_bytes = 64ull << 30;
  uint64_t max_store_bytes = 0;  // 0: unlimited
  uint64_t min_free_bytes = 1ull << 30;
  int max_queued_jobs = 10000;
  std::string auth_tokens;  // file, one token per line
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;  // set: mutual TLS
  int max_message_bytes = 16 << 20;
  int keepalive_seconds = 60;
  double shutdown_grace_seconds = 30;
  std::string log_level = "info";
  std::string port_file;             // written with the bound port
  uint64_t chunk_bytes = 1 << 20;    // download chunk size
  double upload_ttl_hours = 24;      // unfinished/finished upload records expire
  int max_concurrent_uploads = 64;   // UploadModel streams open at once
  double upload_idle_seconds = 300;  // a stream silent this long is cancelled
};

// Env lookup: returns nullptr when unset (std::getenv in production).
using EnvFn = std::function<const char*(const char*)>;

// Fills `config` from `env` and `args`. Sets *help when --help is given.
// InvalidArgument naming the flag for unknown flags or bad values.
absl::Status ParseServeConfig(const std::vector<std::string>& args, const EnvFn& env,
                              ServeConfig* config, bool* help);

// `quantd serve --help` text: every flag, its env variable and default.
std::string ServeHelp();

}  // namespace quantd::server

#endif  // QUANTD_SERVER_CONFIG_H_
