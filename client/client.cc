#include "quantd/client/client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace quantd::client {
namespace fs = std::filesystem;

namespace {

// Incremental sha256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  std::string FinishHex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(md), len));
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Marks `status` as a local file system error (see IsLocalFileError).
absl::Status LocalFileError(absl::Status status) {
  status.SetPayload(kLocalFileErrorPayload, absl::Cord(""));
  return status;
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  int e = errno;
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(e));
  if (e == ENOENT) return LocalFileError(absl::NotFoundError(msg));
  if (e == ENOSPC) return LocalFileError(absl::ResourceExhaustedError(msg));
  return LocalFileError(absl::InternalError(msg));
}

// Hashes [0, limit) of an open file, reporting the bytes hashed so far.
absl::Status HashPrefix(int fd, uint64_t limit, Sha256* sha, const std::string& path,
                        const std::function<void(uint64_t)>& on_progress = nullptr) {
  std::string buf(1 << 20, '\0');
  uint64_t done = 0;
  while (done < limit) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - done));
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read", path);
    if (n == 0) {
      return LocalFileError(absl::DataLossError(absl::StrCat(path, " is shorter than expected")));
    }
    sha->Update(buf.data(), static_cast<size_t>(n));
    done += static_cast<uint64_t>(n);
    if (on_progress) on_progress(done);
  }
  return absl::OkStatus();
}

// Codes after which resuming the same stream makes sense.
bool Retryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kAborted ||
         code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kFailedPrecondition ||  // upload incomplete
         code == absl::StatusCode::kInternal || code == absl::StatusCode::kCancelled ||
         code == absl::StatusCode::kUnknown;
}

std::string RandomId() {
  unsigned char raw[16];
  RAND_bytes(raw, sizeof(raw));
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(raw), sizeof(raw)));
}

bool PlainName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

absl::Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("fsync", dir);
  return absl::OkStatus();
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<std::string> Sha256OfFile(const std::string& path,
                                         const std::function<void(uint64_t)>& on_progress) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", path);
  struct stat st;
  ::fstat(fd, &st);
  Sha256 sha;
  absl::Status s = HashPrefix(fd, static_cast<uint64_t>(st.st_size), &sha, path, on_progress);
  ::close(fd);
  if (!s.ok()) return s;
  return sha.FinishHex();
}

std::string ModelIdOf(const std::vector<v1::FileInfo>& files) {
  std::string identity = "quantd-model-v1\n";
  for (const v1::FileInfo& f : files) {
    absl::StrAppend(&identity, f.name(), "\n", f.size_bytes(), "\n", f.sha256(), "\n");
  }
  Sha256 sha;
  sha.Update(identity.data(), identity.size());
  return absl::StrCat("sha256:", sha.FinishHex());
}

bool IsLocalFileError(const absl::Status& status) {
  return status.GetPayload(kLocalFileErrorPayload).has_value();
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  std::shared_ptr<grpc::Channel> channel = options.channel;
  if (channel == nullptr) {
    std::shared_ptr<grpc::ChannelCredentials> creds;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 20);  // large downloads
    if (options.tls) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = options.tls_root_certs_pem;
      ssl.pem_cert_chain = options.tls_client_cert_pem;
      ssl.pem_private_key = options.tls_client_key_pem;
      creds = grpc::SslCredentials(ssl);
      if (!options.tls_server_name.empty()) {
        args.SetSslTargetNameOverride(options.tls_server_name);
      }
    } else {
      creds = grpc::InsecureChannelCredentials();
    }
    channel = grpc::CreateCustomChannel(options.target, creds, args);
    if (channel == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot create a channel to ", options.target));
    }
  }
  return std::unique_ptr<Client>(new Client(options, std::move(channel)));
}

Client::Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)), channel_(std::move(channel)),
      stub_(v1::Quantd::NewStub(channel_)) {}

// Registers a call's context so CancelInFlight can TryCancel it. A call
// started in epoch E is cancelled at once if the epoch already moved on.
class Client::ActiveCall {
 public:
  ActiveCall(Client* client, grpc::ClientContext* ctx, uint64_t epoch)
      : client_(client), ctx_(ctx) {
    absl::MutexLock lock(&client_->mu_);
    client_->active_.push_back(ctx_);
    if (client_->epoch_ != epoch) ctx_->TryCancel();
  }
  ~ActiveCall() {
    absl::MutexLock lock(&client_->mu_);
    auto& v = client_->active_;
    v.erase(std::remove(v.begin(), v.end(), ctx_), v.end());
  }
  ActiveCall(const ActiveCall&) = delete;
  ActiveCall& operator=(const ActiveCall&) = delete;

 private:
  Client* const client_;
  grpc::ClientContext* const ctx_;
};

void Client::CancelInFlight() {
  absl::MutexLock lock(&mu_);
  ++epoch_;
  for (grpc::ClientContext* ctx : active_) ctx->TryCancel();
}

uint64_t Client::Epoch() {
  absl::MutexLock lock(&mu_);
  return epoch_;
}

bool Client::SleepUnlessCancelled(absl::Duration d, uint64_t epoch) {
  absl::MutexLock lock(&mu_);
  auto moved = [this, epoch]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return epoch_ != epoch; };
  mu_.AwaitWithTimeout(absl::Condition(&moved), d);
  return epoch_ == epoch;
}

namespace {
absl::Status Interrupted() { return absl::CancelledError("interrupted (CancelInFlight)"); }
}  // namespace

void Client::PrepareContext(grpc::ClientContext* context, bool unary) const {
  if (!options_.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  if (unary && options_.rpc_timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  }
}

// ---------------------------------------------------------------- uploads

absl::StatusOr<UploadResult> Client::Upload(const std::vector<std::string>& paths,
                                            const UploadOptions& options) {
  if (paths.empty()) return absl::InvalidArgumentError("no files to upload");
  const bool digests_known = !options.sha256.empty();
  if (digests_known && options.sha256.size() != paths.size()) {
    return absl::InvalidArgumentError("UploadOptions.sha256 needs one digest per path");
  }
  struct File {
    std::string path;
    std::string name;
    uint64_t size = 0;
    int fd = -1;
  };
  std::vector<File> files;
  struct Closer {
    std::vector<File>* f;
    ~Closer() {
      for (auto& x : *f) {
        if (x.fd >= 0) ::close(x.fd);
      }
    }
  } closer{&files};
  uint64_t total = 0;
  for (const std::string& p : paths) {
    File f;
    f.path = p;
    f.name = fs::path(p).filename().string();
    f.fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) return ErrnoError("open", p);
    struct stat st;
    if (::fstat(f.fd, &st) != 0) return ErrnoError("stat", p);
    f.size = static_cast<uint64_t>(st.st_size);
    total += f.size;
    files.push_back(std::move(f));
  }
  std::vector<v1::FileInfo> infos;
  for (size_t i = 0; i < files.size(); ++i) {
    v1::FileInfo& info = infos.emplace_back();
    info.set_name(files[i].name);
    info.set_size_bytes(files[i].size);
    if (digests_known) info.set_sha256(options.sha256[i]);
  }
  const std::string first_id = options.upload_id.empty() ? RandomId() : options.upload_id;
  UploadResult result;
  result.upload_id = first_id;
  absl::Status last;
  absl::Duration backoff = options_.retry_backoff;
  const uint64_t epoch = Epoch();
  bool stored_checked = !digests_known;  // asked whether the server has the model
  int generation = 0;                     // fresh ids after a deleted model
  for (int attempt = 0; attempt < std::max(1, options_.max_attempts); ++attempt) {
    if (attempt > 0) {
      if (!SleepUnlessCancelled(backoff, epoch)) return Interrupted();
      backoff *= 2;
    }
    if (!stored_checked) {
      auto model = GetModel(ModelIdOf(infos));
      if (model.ok()) {
        result.model = *std::move(model);
        result.skipped = true;
        return result;
      }
      if (!absl::IsNotFound(model.status())) {
        last = model.status();
        if (Epoch() != epoch) return Interrupted();
        if (Retryable(last.code())) continue;
        return last;
      }
      stored_checked = true;
    }
    uint64_t offset = 0;
    if (attempt > 0 || !options.upload_id.empty()) {
      auto status = GetUploadStatus(result.upload_id);
      if (status.ok()) {
        if (status->complete()) {
          auto model = GetModel(status->model_id());
          if (model.ok()) {
            result.model = *std::move(model);
            result.skipped = result.bytes_sent == 0;
            return result;
          }
          if (!absl::IsNotFound(model.status())) return model.status();
          // Committed once, but the model was deleted since: a completed
          // upload cannot be reopened, so start afresh under a new id.
          last = model.status();
          result.upload_id = absl::StrCat(first_id.substr(0, 56), "-", ++generation);
          continue;
        }
        offset = status->committed_bytes();
      } else if (!absl::IsNotFound(status.status())) {
        last = status.status();
        if (Retryable(last.code())) continue;
        return last;
      }
    }
    if (offset > total) offset = 0;
    if (attempt == 0) result.resumed_from = offset;

    // Unless the digests are known: hash what the server already has, then
    // stream the rest while hashing.
    std::vector<std::unique_ptr<Sha256>> shas;
    uint64_t base = 0;
    absl::Status st;
    for (File& f : files) {
      if (digests_known) break;
      shas.push_back(std::make_unique<Sha256>());
      uint64_t have = offset > base ? std::min(offset - base, f.size) : 0;
      st = HashPrefix(f.fd, have, shas.back().get(), f.path);
      if (!st.ok()) return st;
      base += f.size;
    }

    grpc::ClientContext ctx;
    PrepareContext(&ctx, /*unary=*/false);
    ActiveCall active(this, &ctx, epoch);
    v1::Model model;
    std::unique_ptr<grpc::ClientWriter<v1::UploadRequest>> writer =
        stub_->UploadModel(&ctx, &model);
    v1::UploadRequest req;
    v1::UploadHeader* header = req.mutable_header();
    header->set_upload_id(result.upload_id);
    header->set_format(options.format);
    for (const auto& [k, v] : options.labels) (*header->mutable_labels())[k] = v;
    for (const v1::FileInfo& info : infos) *header->add_files() = info;
    bool stream_ok = writer->Write(req);
    if (options.on_progress) options.on_progress(offset, total);
    base = 0;
    for (size_t i = 0; stream_ok && i < files.size(); ++i) {
      File& f = files[i];
      uint64_t pos = offset > base ? std::min(offset - base, f.size) : 0;
      while (stream_ok && pos < f.size) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(options_.chunk_bytes, f.size - pos));
        v1::UploadRequest chunk_req;
        v1::UploadChunk* chunk = chunk_req.mutable_chunk();
        chunk->set_offset(base + pos);
        std::string* data = chunk->mutable_data();
        data->resize(n);
        size_t got = 0;
        while (got < n) {
          ssize_t r = ::pread(f.fd, data->data() + got, n - got, static_cast<off_t>(pos + got));
          if (r < 0 && errno == EINTR) continue;
          if (r <= 0) {
            ctx.TryCancel();
            return r < 0 ? ErrnoError("read", f.path)
                         : LocalFileError(absl::DataLossError(
                               absl::StrCat(f.path, " shrank during upload")));
          }
          got += static_cast<size_t>(r);
        }
        if (!digests_known) shas[i]->Update(data->data(), n);
        stream_ok = writer->Write(chunk_req);
        if (stream_ok) {
          pos += n;
          result.bytes_sent += n;
          if (options.on_progress) options.on_progress(base + pos, total);
        }
      }
      base += f.size;
    }
    if (stream_ok) {
      v1::UploadRequest fin;
      for (size_t i = 0; i < files.size(); ++i) {
        fin.mutable_finish()->add_sha256(digests_known ? options.sha256[i] : shas[i]->FinishHex());
      }
      stream_ok = writer->Write(fin);
    }
    writer->WritesDone();
    absl::Status status = FromGrpcStatus(writer->Finish());
    if (status.ok()) {
      result.model = std::move(model);
      // With known digests the server answers the header at once when it has
      // the model: the stream ends early, or the model is another upload's.
      result.skipped =
          digests_known && (!stream_ok || result.model.upload_id() != result.upload_id);
      return result;
    }
    last = status;
    if (Epoch() != epoch) return Interrupted();
    if (!Retryable(status.code())) return status;
  }
  return last;
}

absl::StatusOr<v1::UploadStatus> Client::GetUploadStatus(const std::string& upload_id) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  ActiveCall active(this, &ctx, Epoch());
  v1::GetUploadStatusRequest req;
  req.set_upload_id(upload_id);
  v1::UploadStatus resp;
  absl::Status st = FromGrpcStatus(stub_->GetUploadStatus(&ctx, req, &resp));
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::Model> Client::GetModel(const std::string& model_id) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  ActiveCall active(this, &ctx, Epoch());
  v1::GetModelRequest req;
  req.set_model_id(model_id);
  v1::Model resp;
  absl::Status st = FromGrpcStatus(stub_->GetModel(&ctx, req, &resp));
  if (!st.ok()) return st;
  return resp;
}

absl::Status Client::DeleteModel(const std::string& model_id) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  ActiveCall active(this, &ctx, Epoch());
  v1::DeleteModelRequest req;
  req.set_model_id(model_id);
  v1::DeleteModelResponse resp;
  return FromGrpcStatus(stub_->DeleteModel(&ctx, req, &resp));
}

// ---------------------------------------------------------------- jobs

absl::StatusOr<v1::Job> Client::Submit(const v1::SubmitJobRequest& request) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  ActiveCall active(this, &ctx, Epoch());
  v1::Job resp;
  absl::Status st = FromGrpcStatus(stub_->SubmitJob(&ctx, request, &resp));
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::Job> Client::GetJob(const std::string& job_id) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  ActiveCall active(this, &ctx, Epoch());
  v1::GetJobRequest req;
  req.set_job_id(job_id);
  v1::Job resp;
  absl::Status st = FromGrpcStatus(stub_->GetJob(&ctx, req, &resp));
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::ListJobsResponse> Client::ListJobs(const v1::ListJobsRequest& request) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  ActiveCall active(this, &ctx, Epoch());
  v1::ListJobsResponse resp;
  absl::Status st = FromGrpcStatus(stub_->ListJobs(&ctx, request, &resp));
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::Job> Client::Cancel(const std::string& job_id) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  ActiveCall active(this, &ctx, Epoch());
  v1::CancelJobRequest req;
  req.set_job_id(job_id);
  v1::Job resp;
  absl::Status st = FromGrpcStatus(stub_->CancelJob(&ctx, req, &resp));
  if (!st.ok()) return st;
  return resp;
}

absl::Status Client::DeleteJob(const std::string& job_id) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  ActiveCall active(this, &ctx, Epoch());
  v1::DeleteJobRequest req;
  req.set_job_id(job_id);
  v1::DeleteJobResponse resp;
  return FromGrpcStatus(stub_->DeleteJob(&ctx, req, &resp));
}

absl::StatusOr<v1::Job> Client::Watch(const std::string& job_id,
                                      const std::function<void(const v1::JobEvent&)>& on_event,
                                      absl::Duration timeout) {
  const absl::Time deadline =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  absl::Duration backoff = options_.retry_backoff;
  absl::Status last;
  int failures = 0;
  const uint64_t epoch = Epoch();
  while (true) {
    grpc::ClientContext ctx;
    PrepareContext(&ctx, false);
    if (deadline != absl::InfiniteFuture()) ctx.set_deadline(absl::ToChronoTime(deadline));
    ActiveCall active(this, &ctx, epoch);
    v1::WatchJobRequest req;
    req.set_job_id(job_id);
    auto reader = stub_->WatchJob(&ctx, req);
    v1::JobEvent event;
    bool got_any = false;
    while (reader->Read(&event)) {
      got_any = true;
      if (on_event) on_event(event);
      if (event.final()) {
        ctx.TryCancel();
        reader->Finish();
        return event.job();
      }
    }
    last = FromGrpcStatus(reader->Finish());
    if (Epoch() != epoch) return Interrupted();
    if (absl::IsDeadlineExceeded(last) || absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("job ", job_id, " did not finish in time: ", last.message()));
    }
    if (last.ok() || Retryable(last.code())) {
      failures = got_any ? 0 : failures + 1;
      const int max_failures = options_.watch_max_failures > 0
                                   ? options_.watch_max_failures
                                   : std::max(1, options_.max_attempts) * 4;
      if (failures >= max_failures) return last;
      if (!SleepUnlessCancelled(backoff, epoch)) return Interrupted();
      backoff = std::min(backoff * 2, absl::Seconds(2));
      continue;
    }
    return last;
  }
}

// ---------------------------------------------------------------- downloads

absl::Status Client::DownloadTo(const std::string& job_id, const v1::FileInfo& file,
                                const std::string& final_path, uint64_t epoch,
                                const DownloadOptions& options, uint64_t base, uint64_t total,
                                DownloadResult* result) {
  const std::string part_path = final_path + ".part";
  std::string dir = fs::path(final_path).parent_path().string();
  if (dir.empty()) dir = ".";
  absl::Status last;
  absl::Duration backoff = options_.retry_backoff;
  for (int attempt = 0; attempt < std::max(1, options_.max_attempts); ++attempt) {
    if (attempt > 0) {
      if (!SleepUnlessCancelled(backoff, epoch)) return Interrupted();
      backoff *= 2;
    }
    int fd = ::open(part_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError("open", part_path);
    struct stat st;
    ::fstat(fd, &st);
    uint64_t offset = static_cast<uint64_t>(st.st_size);
    if (offset > file.size_bytes()) {
      if (::ftruncate(fd, 0) != 0) {
        ::close(fd);
        return ErrnoError("truncate", part_path);
      }
      offset = 0;
    }
    Sha256 sha;
    absl::Status s = HashPrefix(fd, offset, &sha, part_path);
    if (!s.ok()) {
      ::close(fd);
      return s;
    }
    if (attempt == 0) result->resumed_bytes += offset;
    ::lseek(fd, static_cast<off_t>(offset), SEEK_SET);
    uint64_t flushed = offset;
    if (options.on_progress) options.on_progress(base + offset, total);

    grpc::ClientContext ctx;
    PrepareContext(&ctx, false);
    v1::DownloadArtifactRequest req;
    req.set_job_id(job_id);
    req.set_file_name(file.name());
    req.set_offset(offset);
    ActiveCall active(this, &ctx, epoch);
    auto reader = stub_->DownloadArtifact(&ctx, req);
    v1::DownloadChunk chunk;
    absl::Status write_error;
    while (reader->Read(&chunk)) {
      if (chunk.offset() != offset) {
        write_error = absl::DataLossError("the server sent a chunk at an unexpected offset");
        ctx.TryCancel();
        break;
      }
      const std::string& data = chunk.data();
      size_t done = 0;
      while (done < data.size()) {
        ssize_t w = ::write(fd, data.data() + done, data.size() - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          write_error = ErrnoError("write", part_path);
          break;
        }
        done += static_cast<size_t>(w);
      }
      if (!write_error.ok()) {
        ctx.TryCancel();
        break;
      }
      sha.Update(data.data(), data.size());
      offset += data.size();
      result->bytes_received += data.size();
      if (options.on_progress) options.on_progress(base + offset, total);
      // Start write-back every 32 MiB so the final fsync is short.
      if (offset - flushed >= (32u << 20)) {
        ::sync_file_range(fd, static_cast<off64_t>(flushed),
                          static_cast<off64_t>(offset - flushed), SYNC_FILE_RANGE_WRITE);
        flushed = offset;
      }
    }
    absl::Status status = FromGrpcStatus(reader->Finish());
    if (!write_error.ok()) {
      ::close(fd);
      return write_error;
    }
    if (!status.ok() || offset != file.size_bytes()) {
      ::close(fd);
      if (Epoch() != epoch) return Interrupted();
      last = status.ok() ? absl::UnavailableError("the download stream ended early") : status;
      if (Retryable(last.code())) continue;
      return last;
    }
    std::string digest = sha.FinishHex();
    if (digest != file.sha256()) {
      ::close(fd);
      ::unlink(part_path.c_str());
      return absl::DataLossError(absl::StrCat(file.name(), ": sha256 mismatch after download (got ",
                                              digest, ", expected ", file.sha256(),
                                              "); the partial file was removed, download again"));
    }
    if (::fsync(fd) != 0) {
      ::close(fd);
      return ErrnoError("fsync", part_path);
    }
    ::close(fd);
    if (::rename(part_path.c_str(), final_path.c_str()) != 0) return ErrnoError("rename", final_path);
    s = FsyncDir(dir);
    if (!s.ok()) return s;
    result->paths.push_back(final_path);
    return absl::OkStatus();
  }
  return last;
}

absl::StatusOr<DownloadResult> Client::Download(const std::string& job_id,
                                                const std::string& dest_dir,
                                                const DownloadOptions& options) {
  auto job = GetJob(job_id);
  if (!job.ok()) return job.status();
  if (job->state() != v1::JOB_STATE_SUCCEEDED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " is ", v1::JobState_Name(job->state()), "; nothing to download"));
  }
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  if (ec) {
    return LocalFileError(
        absl::InternalError(absl::StrCat("cannot create ", dest_dir, ": ", ec.message())));
  }
  DownloadResult result;
  const uint64_t epoch = Epoch();
  uint64_t total = 0;
  for (const v1::FileInfo& f : job->artifact().files()) total += f.size_bytes();
  uint64_t base = 0;
  for (const v1::FileInfo& f : job->artifact().files()) {
    if (!PlainName(f.name())) {
      return absl::DataLossError(absl::StrCat("the server sent a bad file name '", f.name(), "'"));
    }
    absl::Status st = DownloadTo(job_id, f, absl::StrCat(dest_dir, "/", f.name()), epoch, options,
                                 base, total, &result);
    if (!st.ok()) return st;
    base += f.size_bytes();
  }
  return result;
}

absl::StatusOr<DownloadResult> Client::DownloadFile(const std::string& job_id,
                                                    const v1::FileInfo& file,
                                                    const std::string& path,
                                                    const DownloadOptions& options) {
  DownloadResult result;
  absl::Status st = DownloadTo(job_id, file, path, Epoch(), options, 0, file.size_bytes(), &result);
  if (!st.ok()) return st;
  return result;
}

absl::StatusOr<QuantizeResult> Client::Quantize(const std::vector<std::string>& paths,
                                                const v1::Recipe& recipe,
                                                const std::string& dest_dir,
                                                const QuantizeOptions& options) {
  QuantizeResult result;
  auto upload = Upload(paths);
  if (!upload.ok()) return upload.status();
  result.model = upload->model;
  v1::SubmitJobRequest req;
  req.set_model_id(result.model.model_id());
  *req.mutable_recipe() = recipe;
  req.set_priority(options.priority);
  for (const auto& [k, v] : options.labels) (*req.mutable_labels())[k] = v;
  req.set_idempotency_key(options.idempotency_key);
  auto job = Submit(req);
  if (!job.ok()) return job.status();
  auto final_job = Watch(job->job_id(), options.on_event);
  if (!final_job.ok()) return final_job.status();
  result.job = *std::move(final_job);
  if (result.job.state() != v1::JOB_STATE_SUCCEEDED) {
    absl::StatusCode code = absl::StatusCode::kUnknown;
    for (int c = 0; c <= 16; ++c) {
      if (absl::StatusCodeToString(static_cast<absl::StatusCode>(c)) == result.job.error().code()) {
        code = static_cast<absl::StatusCode>(c);
      }
    }
    return absl::Status(code, absl::StrCat("job ", result.job.job_id(), " ",
                                           v1::JobState_Name(result.job.state()), ": ",
                                           result.job.error().message()));
  }
  auto download = Download(result.job.job_id(), dest_dir);
  if (!download.ok()) return download.status();
  result.download = *std::move(download);
  return result;
}

absl::StatusOr<bool> Client::Health() {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext ctx;
  PrepareContext(&ctx, true);
  ActiveCall active(this, &ctx, Epoch());
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  absl::Status st = FromGrpcStatus(health->Check(&ctx, req, &resp));
  if (!st.ok()) return st;
  return resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

}  // namespace quantd::client
