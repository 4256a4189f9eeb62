#include "session.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "quantd/core/base/sha256.h"

namespace quantd::quantctl {
namespace {

// Transfers: a few attempts from the server's committed bytes.
constexpr int kMaxAttempts = 4;
// Watch tolerates ~10 s of a restarting server, then reports it unavailable.
constexpr int kWatchMaxFailures = 8;

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::Status Interrupted() { return absl::CancelledError("interrupted"); }

}  // namespace

absl::StatusOr<std::vector<LocalFile>> DescribeFiles(const std::vector<std::string>& paths,
                                                     bool hash, const TransferFn& progress) {
  std::vector<LocalFile> files;
  uint64_t total = 0;
  for (const auto& p : paths) {
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) {
      return absl::NotFoundError(absl::StrCat(p, ": ", std::strerror(errno)));
    }
    if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(p, " is not a file"));
    LocalFile f;
    f.path = p;
    f.name = std::filesystem::path(p).filename().string();
    f.size = static_cast<uint64_t>(st.st_size);
    f.device = static_cast<uint64_t>(st.st_dev);
    f.inode = static_cast<uint64_t>(st.st_ino);
    f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    f.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
    total += f.size;
    files.push_back(std::move(f));
  }
  if (!hash) return files;
  // Hash, reporting bytes over all files.
  uint64_t base = 0;
  if (progress) progress(0, total);
  for (LocalFile& f : files) {
    uint64_t hashed = 0;
    auto digest = client::Sha256OfFile(f.path, [&](uint64_t n) {
      hashed = n;
      if (progress) progress(std::min(base + n, total), total);
    });
    if (!digest.ok()) return absl::DataLossError(digest.status().message());
    if (hashed != f.size) {
      return absl::DataLossError(absl::StrCat(f.path, " changed while it was being read"));
    }
    f.sha256 = *std::move(digest);
    base += f.size;
  }
  return files;
}

std::string UploadIdFor(const std::vector<LocalFile>& files) {
  bool known = true;
  std::vector<v1::FileInfo> infos;
  for (const LocalFile& f : files) {
    v1::FileInfo& info = infos.emplace_back();
    info.set_name(f.name);
    info.set_size_bytes(f.size);
    info.set_sha256(f.sha256);
    known &= !f.sha256.empty();
  }
  if (known) return absl::StrCat("qc-", client::ModelIdOf(infos).substr(7, 40));
  char host[256] = {};
  (void)::gethostname(host, sizeof(host) - 1);
  std::string identity = absl::StrCat("quantctl-upload-v1\n", host, "\n");
  for (const LocalFile& f : files) {
    absl::StrAppend(&identity, f.name, "\n", f.size, "\n", f.device, "\n", f.inode, "\n",
                    f.mtime_ns, "\n", f.ctime_ns, "\n");
  }
  core::Sha256 sha;
  sha.Update(identity.data(), identity.size());
  return absl::StrCat("qf-", sha.FinishHex().substr(0, 40));
}

absl::StatusOr<std::unique_ptr<Session>> Session::Open(const SessionOptions& options) {
  client::ClientOptions co;
  co.target = options.server;
  co.token = options.token;
  co.tls = options.tls || !options.tls_ca.empty() || !options.tls_cert.empty();
  if (!options.tls_ca.empty()) {
    auto pem = ReadPem(options.tls_ca);
    if (!pem.ok()) return pem.status();
    co.tls_root_certs_pem = *pem;
  }
  if (!options.tls_cert.empty() || !options.tls_key.empty()) {
    if (options.tls_cert.empty() || options.tls_key.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
    }
    auto cert = ReadPem(options.tls_cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadPem(options.tls_key);
    if (!key.ok()) return key.status();
    co.tls_client_cert_pem = *cert;
    co.tls_client_key_pem = *key;
  }
  co.tls_server_name = options.tls_server_name;
  co.rpc_timeout = options.rpc_timeout_seconds > 0 ? absl::Seconds(options.rpc_timeout_seconds)
                                                   : absl::InfiniteDuration();
  co.max_attempts = kMaxAttempts;
  co.watch_max_failures = kWatchMaxFailures;
  auto c = client::Client::Connect(co);
  if (!c.ok()) return c.status();
  return std::unique_ptr<Session>(new Session(options, *std::move(c)));
}

Session::Session(const SessionOptions& options, std::unique_ptr<client::Client> client)
    : options_(options), client_(std::move(client)) {}

void Session::Interrupt() {
  interrupted_.store(true);
  client_->CancelInFlight();
}

std::function<void(uint64_t, uint64_t)> Session::Throttled(const TransferFn& progress) const {
  const uint64_t rate = options_.limit_rate;
  if (rate == 0) return progress;
  // Sleeps so that the bytes since a stream opened (its first report) take
  // at least bytes/rate seconds; a report below the last one is a new stream.
  struct State {
    std::chrono::steady_clock::time_point start;
    uint64_t first = 0;
    uint64_t last = 0;
    bool started = false;
  };
  auto state = std::make_shared<State>();
  return [progress, rate, state](uint64_t done, uint64_t total) {
    if (progress) progress(done, total);
    const auto now = std::chrono::steady_clock::now();
    if (!state->started || done < state->last) {
      *state = {now, done, done, true};
      return;
    }
    state->last = done;
    const double should_take = static_cast<double>(done - state->first) / static_cast<double>(rate);
    const double took = std::chrono::duration<double>(now - state->start).count();
    if (should_take > took) {
      std::this_thread::sleep_for(std::chrono::duration<double>(should_take - took));
    }
  };
}

absl::Status Session::TransferError(const absl::Status& status, const char* resume_hint) const {
  if (interrupted_) return absl::CancelledError(absl::StrCat("interrupted; ", resume_hint));
  if (client::IsLocalFileError(status)) return absl::DataLossError(status.message());
  return status;
}

absl::StatusOr<v1::Model> Session::Upload(const std::vector<LocalFile>& files,
                                          const std::string& model_name,
                                          const std::map<std::string, std::string>& labels,
                                          const TransferFn& progress, bool* skipped) {
  *skipped = false;
  if (interrupted_) return Interrupted();
  client::UploadOptions uo;
  std::vector<std::string> paths;
  bool known = true;
  for (const LocalFile& f : files) {
    paths.push_back(f.path);
    uo.sha256.push_back(f.sha256);
    known &= !f.sha256.empty();
  }
  if (!known) uo.sha256.clear();  // hashed while streaming, sent in the finish message
  uo.upload_id = UploadIdFor(files);
  uo.labels = labels;
  uo.model_name = model_name;
  uo.on_progress = Throttled(progress);
  auto result = client_->Upload(paths, uo);
  if (!result.ok()) {
    return TransferError(result.status(), "run the same command again to resume the upload");
  }
  *skipped = result->skipped;
  return std::move(result->model);
}

absl::StatusOr<v1::Job> Session::Watch(const std::string& job_id,
                                       const std::function<void(const v1::Job&)>& on_event) {
  if (interrupted_) return Interrupted();
  return client_->Watch(job_id, [&on_event](const v1::JobEvent& e) {
    if (on_event) on_event(e.job());
  });
}

absl::Status Session::Download(const std::string& job_id, const v1::FileInfo& file,
                               const std::string& path, const TransferFn& progress) {
  if (interrupted_) return Interrupted();
  client::DownloadOptions options;
  options.on_progress = Throttled(progress);
  auto result = client_->DownloadFile(job_id, file, path, options);
  if (!result.ok()) {
    return TransferError(result.status(),
                         "run the same download again to resume from the .part file");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Session::Health() {
  auto serving = client_->Health();
  if (!serving.ok()) return serving.status();
  return std::string(*serving ? "SERVING" : "NOT_SERVING");
}

}  // namespace quantd::quantctl
