#include "session.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace quantd::quantctl {
namespace {

constexpr size_t kChunkBytes = 256 << 10;
constexpr int kMaxAttempts = 4;

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  std::string Hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    std::string out;
    for (unsigned int i = 0; i < n; ++i) absl::StrAppendFormat(&out, "%02x", md[i]);
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

bool Transient(const absl::Status& st) {
  return st.code() == absl::StatusCode::kUnavailable || st.code() == absl::StatusCode::kAborted ||
         st.code() == absl::StatusCode::kFailedPrecondition;
}

void Backoff(int attempt) {
  std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
}

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  auto digest = client::Sha256OfFile(path);
  if (!digest.ok() && digest.status().code() != absl::StatusCode::kNotFound) {
    return absl::DataLossError(digest.status().message());
  }
  return digest;
}

std::string ModelIdOf(const std::vector<LocalFile>& files) {
  std::string identity = "quantd-model-v1\n";
  for (const auto& f : files)
    absl::StrAppend(&identity, f.name, "\n", f.size, "\n", f.sha256, "\n");
  Sha256 sha;
  sha.Update(identity.data(), identity.size());
  return absl::StrCat("sha256:", sha.Hex());
}

absl::StatusOr<std::vector<LocalFile>> DescribeFiles(const std::vector<std::string>& paths,
                                                     const TransferFn& progress) {
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
    total += f.size;
    files.push_back(std::move(f));
  }
  // Hash in 1 MiB blocks, reporting bytes over all files.
  std::vector<char> buf(1 << 20);
  uint64_t done = 0;
  if (progress) progress(0, total);
  for (LocalFile& f : files) {
    int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return absl::DataLossError(absl::StrCat(f.path, ": cannot open: ", std::strerror(errno)));
    }
    Sha256 sha;
    uint64_t got = 0;
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int e = errno;
        ::close(fd);
        return absl::DataLossError(absl::StrCat(f.path, ": read error: ", std::strerror(e)));
      }
      if (n == 0) break;
      sha.Update(buf.data(), static_cast<size_t>(n));
      got += static_cast<uint64_t>(n);
      done += static_cast<uint64_t>(n);
      if (progress) progress(std::min(done, total), total);
    }
    ::close(fd);
    if (got != f.size) {
      return absl::DataLossError(absl::StrCat(f.path, " changed while it was being read"));
    }
    f.sha256 = sha.Hex();
  }
  return files;
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
  // Watch tolerates ~10 s of a restarting server, then reports it unavailable.
  co.max_attempts = 2;
  auto c = client::Client::Connect(co);
  if (!c.ok()) return c.status();
  return std::unique_ptr<Session>(new Session(options, *std::move(c)));
}

Session::Session(const SessionOptions& options, std::unique_ptr<client::Client> client)
    : options_(options), client_(std::move(client)), stub_(client_->stub()) {}

void Session::SetActive(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  active_ = context;
  if (context != nullptr && interrupted_.load()) context->TryCancel();
}

void Session::Interrupt() {
  interrupted_.store(true);
  client_->CancelInFlight();  // Watch and unary calls in the library
  absl::MutexLock lock(&mu_);
  if (active_ != nullptr) active_->TryCancel();  // our own transfer streams
}

void Session::Throttle(std::chrono::steady_clock::time_point start, uint64_t since_start) {
  if (options_.limit_rate == 0) return;
  const double should_take =
      static_cast<double>(since_start) / static_cast<double>(options_.limit_rate);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (should_take > took) {
    std::this_thread::sleep_for(std::chrono::duration<double>(should_take - took));
  }
}

absl::StatusOr<v1::Model> Session::Upload(const std::vector<LocalFile>& files,
                                          const std::map<std::string, std::string>& labels,
                                          const TransferFn& progress, bool* skipped) {
  *skipped = false;
  const std::string model_id = ModelIdOf(files);
  {
    auto model = client_->GetModel(model_id);
    if (model.ok()) {
      *skipped = true;
      return model;
    }
    if (model.status().code() != absl::StatusCode::kNotFound) return model.status();
  }
  std::string upload_id = absl::StrCat("qc-", model_id.substr(7, 40));
  absl::Status last;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (interrupted_) return absl::CancelledError("interrupted");
    uint64_t offset = 0;
    auto status = client_->GetUploadStatus(upload_id);
    if (status.ok()) {
      if (status->complete()) {
        // Committed by an earlier run, then perhaps deleted: start afresh
        // under a new id unless the model is still there.
        auto model = client_->GetModel(status->model_id());
        if (model.ok()) {
          *skipped = true;
          return model;
        }
        upload_id = absl::StrCat(upload_id.substr(0, 43), "-", attempt + 1);
        continue;
      }
      offset = status->committed_bytes();
    } else if (status.status().code() != absl::StatusCode::kNotFound) {
      if (!Transient(status.status())) return status.status();
      last = status.status();
      Backoff(attempt);
      continue;
    }
    auto model = UploadOnce(files, upload_id, offset, labels, progress);
    if (model.ok() || !Transient(model.status()) || interrupted_) return model;
    last = model.status();
    Backoff(attempt);
  }
  return last;
}

absl::StatusOr<v1::Model> Session::UploadOnce(const std::vector<LocalFile>& files,
                                              const std::string& upload_id, uint64_t offset,
                                              const std::map<std::string, std::string>& labels,
                                              const TransferFn& progress) {
  grpc::ClientContext ctx;
  Prepare(&ctx, false);
  SetActive(&ctx);
  struct Clear {
    Session* s;
    ~Clear() { s->SetActive(nullptr); }
  } clear{this};
  v1::Model model;
  auto writer = stub_->UploadModel(&ctx, &model);
  v1::UploadRequest req;
  v1::UploadHeader* header = req.mutable_header();
  header->set_upload_id(upload_id);
  uint64_t total = 0;
  for (const auto& f : files) {
    v1::FileInfo* info = header->add_files();
    info->set_name(f.name);
    info->set_size_bytes(f.size);
    info->set_sha256(f.sha256);
    total += f.size;
  }
  for (const auto& [k, v] : labels) (*header->mutable_labels())[k] = v;
  bool ok = writer->Write(req);
  if (progress) progress(offset, total);
  const auto start = std::chrono::steady_clock::now();
  uint64_t sent = 0;
  uint64_t pos = 0;  // start of the current file over all files
  absl::Status local;
  for (size_t i = 0; ok && i < files.size() && local.ok(); ++i) {
    const LocalFile& f = files[i];
    if (pos + f.size <= offset) {
      pos += f.size;
      continue;
    }
    int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      local = absl::DataLossError(absl::StrCat(f.path, ": cannot open: ", std::strerror(errno)));
      break;
    }
    uint64_t at = offset > pos ? offset - pos : 0;
    std::string buf;
    while (ok && at < f.size) {
      buf.resize(static_cast<size_t>(std::min<uint64_t>(kChunkBytes, f.size - at)));
      ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(at));
      if (n <= 0) {
        local = absl::DataLossError(
            absl::StrCat(f.path, " changed or cannot be read during the upload"));
        break;
      }
      buf.resize(static_cast<size_t>(n));
      v1::UploadRequest chunk;
      chunk.mutable_chunk()->set_offset(pos + at);
      chunk.mutable_chunk()->set_data(buf);
      ok = writer->Write(chunk);
      at += static_cast<uint64_t>(n);
      sent += static_cast<uint64_t>(n);
      if (progress) progress(pos + at, total);
      Throttle(start, sent);
    }
    ::close(fd);
    pos += f.size;
  }
  if (!local.ok()) {
    ctx.TryCancel();
    writer->Finish();
    return local;
  }
  if (ok) {
    v1::UploadRequest finish;
    for (const auto& f : files) finish.mutable_finish()->add_sha256(f.sha256);
    writer->Write(finish);
  }
  writer->WritesDone();
  absl::Status st = FromGrpc(writer->Finish());
  if (!st.ok()) {
    if (interrupted_)
      return absl::CancelledError("interrupted; run the same command again to resume the upload");
    return st;
  }
  return model;
}

absl::StatusOr<v1::Job> Session::Submit(const v1::SubmitJobRequest& request) {
  return client_->Submit(request);
}

absl::StatusOr<v1::Job> Session::GetJob(const std::string& job_id) {
  return client_->GetJob(job_id);
}

absl::StatusOr<v1::ListJobsResponse> Session::ListJobs(const v1::ListJobsRequest& request) {
  return client_->ListJobs(request);
}

absl::StatusOr<v1::Job> Session::CancelJob(const std::string& job_id) {
  return client_->Cancel(job_id);
}

absl::Status Session::DeleteJob(const std::string& job_id) { return client_->DeleteJob(job_id); }

absl::StatusOr<v1::Job> Session::Watch(const std::string& job_id,
                                       const std::function<void(const v1::Job&)>& on_event) {
  if (interrupted_) return absl::CancelledError("interrupted");
  return client_->Watch(job_id, [&on_event](const v1::JobEvent& e) {
    if (on_event) on_event(e.job());
  });
}

absl::Status Session::Download(const std::string& job_id, const v1::FileInfo& file,
                               const std::string& path, const TransferFn& progress) {
  const std::string part = absl::StrCat(path, ".part");
  absl::Status last;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (interrupted_) return absl::CancelledError("interrupted");
    uint64_t offset = 0;
    struct stat st;
    if (::stat(part.c_str(), &st) == 0) offset = static_cast<uint64_t>(st.st_size);
    if (offset > file.size_bytes()) {
      ::unlink(part.c_str());
      offset = 0;
    }
    int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return absl::DataLossError(absl::StrCat(part, ": cannot create: ", std::strerror(errno)));
    }
    if (progress) progress(offset, file.size_bytes());
    absl::Status result;
    if (offset < file.size_bytes()) {
      grpc::ClientContext ctx;
      Prepare(&ctx, false);
      SetActive(&ctx);
      v1::DownloadArtifactRequest req;
      req.set_job_id(job_id);
      req.set_file_name(file.name());
      req.set_offset(offset);
      auto reader = stub_->DownloadArtifact(&ctx, req);
      v1::DownloadChunk chunk;
      const auto start = std::chrono::steady_clock::now();
      uint64_t got = 0;
      while (reader->Read(&chunk)) {
        if (chunk.offset() != offset) {
          ctx.TryCancel();
          result = absl::DataLossError(
              absl::StrCat("server sent offset ", chunk.offset(), ", expected ", offset));
          break;
        }
        const std::string& d = chunk.data();
        if (::pwrite(fd, d.data(), d.size(), static_cast<off_t>(offset)) !=
            static_cast<ssize_t>(d.size())) {
          ctx.TryCancel();
          result =
              absl::DataLossError(absl::StrCat(part, ": write failed: ", std::strerror(errno)));
          break;
        }
        offset += d.size();
        got += d.size();
        if (progress) progress(offset, file.size_bytes());
        Throttle(start, got);
      }
      absl::Status rpc = FromGrpc(reader->Finish());
      SetActive(nullptr);
      if (result.ok()) result = rpc;
    }
    if (!result.ok()) {
      ::close(fd);
      if (interrupted_) {
        return absl::CancelledError(
            "interrupted; run the same download again to resume from the .part file");
      }
      if (!Transient(result) && result.code() != absl::StatusCode::kCancelled) return result;
      last = result;
      Backoff(attempt);
      continue;
    }
    bool synced = ::fsync(fd) == 0;
    synced = ::close(fd) == 0 && synced;
    if (!synced) return absl::DataLossError(absl::StrCat(part, ": fsync failed"));
    if (offset != file.size_bytes()) {
      return absl::DataLossError(
          absl::StrCat(file.name(), ": got ", offset, " bytes, expected ", file.size_bytes()));
    }
    auto digest = Sha256File(part);
    if (!digest.ok()) return digest.status();
    if (*digest != file.sha256()) {
      ::unlink(part.c_str());
      return absl::DataLossError(absl::StrCat(file.name(), ": sha256 ", *digest,
                                              " does not match the server's ", file.sha256(),
                                              "; the partial file was removed, download again"));
    }
    if (::rename(part.c_str(), path.c_str()) != 0) {
      return absl::DataLossError(
          absl::StrCat("cannot rename ", part, " to ", path, ": ", std::strerror(errno)));
    }
    // Make the rename durable.
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    return absl::OkStatus();
  }
  return last;
}

absl::StatusOr<std::string> Session::Health() {
  auto serving = client_->Health();
  if (!serving.ok()) return serving.status();
  return std::string(*serving ? "SERVING" : "NOT_SERVING");
}

}  // namespace quantd::quantctl
