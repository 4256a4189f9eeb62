#include "quantd/server/config.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace quantd::server {
namespace {

struct FlagDef {
  const char* name;
  const char* env;
  const char* value_name;
  const char* help;
  std::function<absl::Status(const std::string&, ServeConfig*)> set;
};

absl::Status BadValue(const char* flag, const std::string& v, const char* want) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", v, "' is not ", want));
}

// Accepts plain bytes or a K/M/G/T suffix (binary units).
bool ParseBytes(const std::string& s, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t mult = 1;
  std::string digits = s;
  char last = s.back();
  if (last == 'K' || last == 'k') mult = 1ull << 10;
  if (last == 'M' || last == 'm') mult = 1ull << 20;
  if (last == 'G' || last == 'g') mult = 1ull << 30;
  if (last == 'T' || last == 't') mult = 1ull << 40;
  if (mult != 1) digits.pop_back();
  uint64_t v = 0;
  if (!absl::SimpleAtoi(digits, &v)) return false;
  *out = v * mult;
  return true;
}

const std::vector<FlagDef>& Flags() {
  static const auto* const kFlags = new std::vector<FlagDef>{
      {"listen", "QUANTD_LISTEN", "HOST:PORT",
       "gRPC address (port 0 picks a free port; see --port-file)",
       [](const std::string& v, ServeConfig* c) {
         if (v.find(':') == std::string::npos) return BadValue("listen", v, "HOST:PORT");
         c->listen = v;
         return absl::OkStatus();
       }},
      {"data-dir", "QUANTD_DATA_DIR", "DIR", "models, artifacts, uploads and the job journal",
       [](const std::string& v, ServeConfig* c) {
         if (v.empty()) return BadValue("data-dir", v, "a directory");
         c->data_dir = v;
         return absl::OkStatus();
       }},
      {"job-store", "QUANTD_JOB_STORE", "sqlite|postgres://...",
       "where jobs are recorded: sqlite (embedded journal in --data-dir, one server) or a "
       "PostgreSQL URI / libpq connection string shared by replicas on one shared --data-dir",
       [](const std::string& v, ServeConfig* c) {
         if (v != "sqlite" && !absl::StartsWith(v, "postgres://") &&
             !absl::StartsWith(v, "postgresql://")) {
           // Not echoed: a connection string may carry a password.
           return absl::InvalidArgumentError(
               "--job-store: not sqlite and not a postgres:// or postgresql:// URI");
         }
         c->job_store = v;
         return absl::OkStatus();
       }},
      {"lease-seconds", "QUANTD_LEASE_SECONDS", "SECONDS",
       "with a PostgreSQL job store: a running job's lease; a replica that has not renewed it "
       "for this long (killed, paused, cut off) loses the job to another",
       [](const std::string& v, ServeConfig* c) {
         if (!absl::SimpleAtod(v, &c->lease_seconds) || c->lease_seconds < 0.5 ||
             c->lease_seconds > 3600) {
           return BadValue("lease-seconds", v, "a number of seconds from 0.5 to 3600");
         }
         return absl::OkStatus();
       }},
      {"workers", "QUANTD_WORKERS", "N",
       "jobs run at once (at most --max-job-threads: each running job computes on >= 1 thread)",
       [](const std::string& v, ServeConfig* c) {
         if (!absl::SimpleAtoi(v, &c->workers) || c->workers < 1 || c->workers > 256) {
           return BadValue("workers", v, "a number from 1 to 256");
         }
         return absl::OkStatus();
       }},
      {"max-job-threads", "QUANTD_MAX_JOB_THREADS", "N",
       "threads computing for ALL running jobs together, not per job (0: hardware "
       "threads); a job's recipe.threads is a hint within it (see Threads above)",
       [](const std::string& v, ServeConfig* c) {
         if (!absl::SimpleAtoi(v, &c->max_job_threads) || c->max_job_threads < 0) {
           return BadValue("max-job-threads", v, "a number >= 0");
         }
         return absl::OkStatus();
       }},
      {"metrics-listen", "QUANTD_METRICS_LISTEN", "HOST:PORT",
       "serve Prometheus /metrics here (off when empty)",
       [](const std::string& v, ServeConfig* c) {
         c->metrics_listen = v;
         return absl::OkStatus();
       }},
      {"max-upload-bytes", "QUANTD_MAX_UPLOAD_BYTES", "BYTES",
       "largest model accepted (all files; K/M/G/T suffixes)",
       [](const std::string& v, ServeConfig* c) {
         if (!ParseBytes(v, &c->max_upload_bytes)) return BadValue("max-upload-bytes", v, "a size");
         return absl::OkStatus();
       }},
      {"max-store-bytes", "QUANTD_MAX_STORE_BYTES", "BYTES",
       "total bytes of models, artifacts and uploads (0: no limit)",
       [](const std::string& v, ServeConfig* c) {
         if (!ParseBytes(v, &c->max_store_bytes)) return BadValue("max-store-bytes", v, "a size");
         return absl::OkStatus();
       }},
      {"min-free-bytes", "QUANTD_MIN_FREE_BYTES", "BYTES",
       "refuse uploads that would leave less free disk than this",
       [](const std::string& v, ServeConfig* c) {
         if (!ParseBytes(v, &c->min_free_bytes)) return BadValue("min-free-bytes", v, "a size");
         return absl::OkStatus();
       }},
      {"max-queued-jobs", "QUANTD_MAX_QUEUED_JOBS", "N",
       "SubmitJob returns RESOURCE_EXHAUSTED beyond this many queued jobs",
       [](const std::string& v, ServeConfig* c) {
         if (!absl::SimpleAtoi(v, &c->max_queued_jobs) || c->max_queued_jobs < 1) {
           return BadValue("max-queued-jobs", v, "a number >= 1");
         }
         return absl::OkStatus();
       }},
      {"auth-tokens", "QUANTD_AUTH_TOKENS", "FILE",
       "require `authorization: Bearer <token>`; one token per line ('#' comments)",
       [](const std::string& v, ServeConfig* c) {
         c->auth_tokens = v;
         return absl::OkStatus();
       }},
      {"tls-cert", "QUANTD_TLS_CERT", "FILE", "server certificate chain (PEM); enables TLS",
       [](const std::string& v, ServeConfig* c) {
         c->tls_cert = v;
         return absl::OkStatus();
       }},
      {"tls-key", "QUANTD_TLS_KEY", "FILE", "server private key (PEM)",
       [](const std::string& v, ServeConfig* c) {
         c->tls_key = v;
         return absl::OkStatus();
       }},
      {"tls-client-ca", "QUANTD_TLS_CLIENT_CA", "FILE",
       "CA bundle (PEM) that client certificates must chain to: mutual TLS",
       [](const std::string& v, ServeConfig* c) {
         c->tls_client_ca = v;
         return absl::OkStatus();
       }},
      {"max-message-bytes", "QUANTD_MAX_MESSAGE_BYTES", "BYTES",
       "largest gRPC message in either direction",
       [](const std::string& v, ServeConfig* c) {
         uint64_t n = 0;
         if (!ParseBytes(v, &n) || n < (64u << 10) || n > (1u << 30)) {
           return BadValue("max-message-bytes", v, "a size from 64K to 1G");
         }
         c->max_message_bytes = static_cast<int>(n);
         return absl::OkStatus();
       }},
      {"keepalive-seconds", "QUANTD_KEEPALIVE_SECONDS", "S",
       "HTTP/2 keepalive ping interval (timeout: 20 s)",
       [](const std::string& v, ServeConfig* c) {
         if (!absl::SimpleAtoi(v, &c->keepalive_seconds) || c->keepalive_seconds < 1) {
           return BadValue("keepalive-seconds", v, "a number >= 1");
         }
         return absl::OkStatus();
       }},
      {"shutdown-grace-seconds", "QUANTD_SHUTDOWN_GRACE_SECONDS", "S",
       "on SIGTERM, running jobs get this long to finish before they are requeued",
       [](const std::string& v, ServeConfig* c) {
         if (!absl::SimpleAtod(v, &c->shutdown_grace_seconds) || c->shutdown_grace_seconds < 0) {
           return BadValue("shutdown-grace-seconds", v, "a number >= 0");
         }
         return absl::OkStatus();
       }},
      {"log-level", "QUANTD_LOG_LEVEL", "LEVEL", "debug, info, warning or error",
       [](const std::string& v, ServeConfig* c) {
         c->log_level = v;
         return absl::OkStatus();
       }},
      {"port-file", "QUANTD_PORT_FILE", "FILE",
       "write the bound gRPC port here once serving (for --listen HOST:0)",
       [](const std::string& v, ServeConfig* c) {
         c->port_file = v;
         return absl::OkStatus();
       }},
      {"upload-ttl-hours", "QUANTD_UPLOAD_TTL_HOURS", "H",
       "forget uploads (resumable parts, finished records) untouched this long",
       [](const std::string& v, ServeConfig* c) {
         if (!absl::SimpleAtod(v, &c->upload_ttl_hours) || c->upload_ttl_hours <= 0) {
           return BadValue("upload-ttl-hours", v, "a number > 0");
         }
         return absl::OkStatus();
       }},
      {"max-concurrent-uploads", "QUANTD_MAX_CONCURRENT_UPLOADS", "N",
       "UploadModel streams open at once; more get RESOURCE_EXHAUSTED",
       [](const std::string& v, ServeConfig* c) {
         if (!absl::SimpleAtoi(v, &c->max_concurrent_uploads) || c->max_concurrent_uploads < 1) {
           return BadValue("max-concurrent-uploads", v, "a number >= 1");
         }
         return absl::OkStatus();
       }},
      {"upload-idle-seconds", "QUANTD_UPLOAD_IDLE_SECONDS", "S",
       "cancel an upload stream that sends nothing this long (its bytes stay for a resume)",
       [](const std::string& v, ServeConfig* c) {
         if (!absl::SimpleAtod(v, &c->upload_idle_seconds) || c->upload_idle_seconds <= 0) {
           return BadValue("upload-idle-seconds", v, "a number > 0");
         }
         return absl::OkStatus();
       }},
      {"chunk-bytes", "QUANTD_CHUNK_BYTES", "BYTES", "download chunk size",
       [](const std::string& v, ServeConfig* c) {
         if (!ParseBytes(v, &c->chunk_bytes) || c->chunk_bytes < 4096 ||
             c->chunk_bytes > (8u << 20)) {
           return BadValue("chunk-bytes", v, "a size from 4K to 8M");
         }
         return absl::OkStatus();
       }},
  };
  return *kFlags;
}

}  // namespace

absl::Status ParseServeConfig(const std::vector<std::string>& args, const EnvFn& env,
                              ServeConfig* config, bool* help) {
  *help = false;
  for (const FlagDef& f : Flags()) {
    const char* v = env ? env(f.env) : nullptr;
    if (v == nullptr || *v == '\0') continue;
    absl::Status st = f.set(v, config);
    if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(f.env, ": ", st.message()));
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      *help = true;
      return absl::OkStatus();
    }
    if (!absl::StartsWith(a, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", a, "'"));
    }
    std::string name = a.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const FlagDef* def = nullptr;
    for (const FlagDef& f : Flags()) {
      if (name == f.name) def = &f;
    }
    if (def == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, "; see `quantd serve --help`"));
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    absl::Status st = def->set(value, config);
    if (!st.ok()) return st;
  }
  if (config->tls_cert.empty() != config->tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!config->tls_client_ca.empty() && config->tls_cert.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  return absl::OkStatus();
}

std::string ServeHelp() {
  ServeConfig d;
  std::string out =
      "usage: quantd serve [flags]\n"
      "\n"
      "Runs the Quantd gRPC service (quantd.v1.Quantd, grpc.health.v1, reflection).\n"
      "Every flag can also be set by the environment variable shown; flags win.\n"
      "SIGTERM/SIGINT drain: new uploads and jobs are refused, running jobs get\n"
      "--shutdown-grace-seconds to finish and are requeued otherwise.\n"
      "\n"
      "Threads: --max-job-threads N is one compute budget for all running jobs\n"
      "together. At most min(--workers, N) jobs run at once; a job computes on\n"
      "min(its recipe.threads hint, or N / that many workers when it has none;\n"
      "what is left after the running jobs and one thread per idle worker)\n"
      "threads, at least 1, its worker thread included, so no more than N\n"
      "threads compute at any time.\n"
      "\n"
      "Flags:\n";
  auto def = [&](const std::string& name) -> std::string {
    if (name == "listen") return d.listen;
    if (name == "data-dir") return d.data_dir;
    if (name == "workers") return absl::StrCat(d.workers);
    if (name == "job-store") return d.job_store;
    if (name == "lease-seconds") return absl::StrCat(d.lease_seconds);
    if (name == "max-job-threads") return "0";
    if (name == "max-upload-bytes") return "64G";
    if (name == "max-store-bytes") return "0";
    if (name == "min-free-bytes") return "1G";
    if (name == "max-queued-jobs") return absl::StrCat(d.max_queued_jobs);
    if (name == "max-message-bytes") return "16M";
    if (name == "keepalive-seconds") return absl::StrCat(d.keepalive_seconds);
    if (name == "shutdown-grace-seconds") return absl::StrCat(d.shutdown_grace_seconds);
    if (name == "log-level") return d.log_level;
    if (name == "chunk-bytes") return "1M";
    if (name == "upload-ttl-hours") return "24";
    if (name == "max-concurrent-uploads") return absl::StrCat(d.max_concurrent_uploads);
    if (name == "upload-idle-seconds") return absl::StrCat(d.upload_idle_seconds);
    return "";
  };
  for (const FlagDef& f : Flags()) {
    std::string left = absl::StrCat("  --", f.name, " ", f.value_name);
    if (left.size() < 34) left.resize(34, ' ');
    std::string d_value = def(f.name);
    absl::StrAppend(&out, left, " ", f.help, "\n", std::string(35, ' '), "env ", f.env,
                    d_value.empty() ? "" : absl::StrCat("; default ", d_value), "\n");
  }
  return out;
}

}  // namespace quantd::server
