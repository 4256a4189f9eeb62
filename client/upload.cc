// Client::Upload: chunked, resumable, digest-checked model uploads; plus the
// client's file digests and model ids.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "client_internal.h"
#include "quantd/client/client.h"
#include "quantd/core/base/model_id.h"
#include "quantd/core/base/sha256.h"

namespace quantd::client {
namespace fs = std::filesystem;

using internal::Interrupted;
using internal::LocalErrnoError;
using internal::LocalFileError;
using internal::RandomId;
using internal::Retryable;

absl::StatusOr<std::string> Sha256OfFile(const std::string& path,
                                         const std::function<void(uint64_t)>& on_progress) {
  auto digest = core::Sha256File(path, on_progress);
  if (!digest.ok()) return LocalFileError(digest.status());
  return digest;
}

std::string ModelIdOf(const std::vector<v1::FileInfo>& files) {
  return core::ModelIdOfFiles(files);
}

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
    if (f.fd < 0) return LocalErrnoError(errno, "open", p);
    // Read once, front to back: ask for aggressive read-ahead.
    (void)::posix_fadvise(f.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    struct stat st;
    if (::fstat(f.fd, &st) != 0) return LocalErrnoError(errno, "stat", p);
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
  int generation = 0;                    // fresh ids after a deleted model
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
    std::vector<std::unique_ptr<core::Sha256>> shas;
    uint64_t base = 0;
    absl::Status st;
    for (File& f : files) {
      if (digests_known) break;
      shas.push_back(std::make_unique<core::Sha256>());
      uint64_t have = offset > base ? std::min(offset - base, f.size) : 0;
      st = LocalFileError(core::HashFileRange(f.fd, have, f.path, shas.back().get()));
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
    header->set_model_name(options.model_name);
    for (const auto& [k, v] : options.labels) (*header->mutable_labels())[k] = v;
    for (const v1::FileInfo& info : infos) *header->add_files() = info;
    bool stream_ok = writer->Write(req);
    if (options.on_progress) options.on_progress(offset, total);
    base = 0;
    // One message for every chunk: the file is read straight into its bytes
    // field, whose buffer is reused (no allocation, no page faults per chunk).
    v1::UploadRequest chunk_req;
    v1::UploadChunk* chunk = chunk_req.mutable_chunk();
    std::string* data = chunk->mutable_data();
    data->reserve(options_.chunk_bytes);
    for (size_t i = 0; stream_ok && i < files.size(); ++i) {
      File& f = files[i];
      uint64_t pos = offset > base ? std::min(offset - base, f.size) : 0;
      while (stream_ok && pos < f.size) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(options_.chunk_bytes, f.size - pos));
        chunk->set_offset(base + pos);
        data->resize(n);
        size_t got = 0;
        while (got < n) {
          ssize_t r = ::pread(f.fd, data->data() + got, n - got, static_cast<off_t>(pos + got));
          if (r < 0 && errno == EINTR) continue;
          if (r <= 0) {
            ctx.TryCancel();
            return r < 0 ? LocalErrnoError(errno, "read", f.path)
                         : LocalFileError(
                               absl::DataLossError(absl::StrCat(f.path, " shrank during upload")));
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

}  // namespace quantd::client
