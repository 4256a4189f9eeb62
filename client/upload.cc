// Client::Upload: chunked, resumable, digest-checked model uploads; plus the
// client's file digests and model ids.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "client_internal.h"
#include "quantd/client/client.h"
#include "quantd/core/base/model_id.h"
#include "quantd/core/base/sha256.h"
#include "upload_chunks.h"

namespace quantd::client {
namespace fs = std::filesystem;

using internal::Interrupted;
using internal::LocalErrnoError;
using internal::LocalFileError;
using internal::RandomId;
using internal::Retryable;

namespace {

// UploadModel's method path (quantd.proto: service quantd.v1.Quantd).
constexpr char kUploadModelMethod[] = "/quantd.v1.Quantd/UploadModel";

}  // namespace

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
    std::vector<core::Sha256*> hashers;
    uint64_t base = 0;
    absl::Status st;
    for (File& f : files) {
      if (digests_known) break;
      shas.push_back(std::make_unique<core::Sha256>());
      hashers.push_back(shas.back().get());
      uint64_t have = offset > base ? std::min(offset - base, f.size) : 0;
      st = LocalFileError(core::HashFileRange(f.fd, have, f.path, shas.back().get()));
      if (!st.ok()) return st;
      base += f.size;
    }

    grpc::ClientContext ctx;
    PrepareContext(&ctx, /*unary=*/false);
    ActiveCall active(this, &ctx, epoch);
    // Raw messages: the chunks reference the file blocks instead of being
    // copied into protobuf strings and serialised again; the server sees
    // the same UploadRequest messages.
    const grpc::internal::RpcMethod method(kUploadModelMethod,
                                           grpc::internal::RpcMethod::CLIENT_STREAMING);
    grpc::ByteBuffer response;
    std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer(
        grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(channel_.get(), method,
                                                                      &ctx, &response));
    v1::UploadRequest req;
    v1::UploadHeader* header = req.mutable_header();
    header->set_upload_id(result.upload_id);
    header->set_format(options.format);
    header->set_model_name(options.model_name);
    for (const auto& [k, v] : options.labels) (*header->mutable_labels())[k] = v;
    for (const v1::FileInfo& info : infos) *header->add_files() = info;
    bool stream_ok = writer->Write(internal::MessageBuffer(req));
    if (options.on_progress) options.on_progress(offset, total);
    // A reader thread reads (and hashes) the files ahead, block by block,
    // while this thread sends the blocks in chunk messages that reference
    // them: each file is read once, and nothing is copied in user space.
    std::vector<internal::ReadAhead::File> to_read;
    for (const File& f : files) to_read.push_back({f.fd, f.path, f.size});
    const size_t chunk_bytes = std::max<size_t>(options_.chunk_bytes, 1);
    const size_t block_bytes = chunk_bytes * std::max<size_t>(1, (4u << 20) / chunk_bytes);
    std::optional<internal::ReadAhead> reader;
    reader.emplace(std::move(to_read), offset, std::move(hashers), block_bytes,
                   internal::kReadAheadBlocks);
    while (stream_ok) {
      internal::ReadBlock* block = reader->Next();
      if (block == nullptr) break;
      for (size_t done = 0; stream_ok && done < block->size;) {
        const size_t n = std::min(chunk_bytes, block->size - done);
        stream_ok = writer->Write(
            n >= internal::kMinReferencedChunk
                ? internal::ChunkMessage(reader->pool(), block, done, n)
                : internal::CopiedChunkMessage(block->offset + done, block->data.get() + done, n));
        if (stream_ok) {
          done += n;
          result.bytes_sent += n;
          if (options.on_progress) options.on_progress(block->offset + done, total);
        }
      }
      reader->pool()->Unref(block);
    }
    if (stream_ok) {
      if (st = reader->status(); !st.ok()) {
        ctx.TryCancel();
        return st;
      }
      reader.reset();  // joins the reader: the digests are complete
      v1::UploadRequest fin;
      for (size_t i = 0; i < files.size(); ++i) {
        fin.mutable_finish()->add_sha256(digests_known ? options.sha256[i] : shas[i]->FinishHex());
      }
      stream_ok = writer->Write(internal::MessageBuffer(fin));
    }
    reader.reset();
    writer->WritesDone();
    absl::Status status = FromGrpcStatus(writer->Finish());
    v1::Model model;
    if (status.ok() &&
        !grpc::SerializationTraits<v1::Model>::Deserialize(&response, &model).ok()) {
      status = absl::InternalError("the server's UploadModel answer does not parse");
    }
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
