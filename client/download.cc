// Client downloads: each artifact file is written through a resumable
// AtomicFileWriter ("<name>.part", resumed from its size) fed by a
// DownloadPipeline (hashing and O_DIRECT writes beside the receiving
// thread), its sha256 checked, then fsynced and renamed into place.
#include <grpcpp/impl/codegen/proto_utils.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_internal.h"
#include "download_pipeline.h"
#include "quantd/api/chunk_view.h"
#include "quantd/client/client.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/sha256.h"

namespace quantd::client {
namespace fs = std::filesystem;

using internal::DownloadPipeline;
using internal::Interrupted;
using internal::LocalFileError;
using internal::PlainName;
using internal::Retryable;

constexpr char kDownloadArtifactMethod[] = "/quantd.v1.Quantd/DownloadArtifact";

absl::Status Client::DownloadTo(const std::string& job_id, const v1::FileInfo& file,
                                const std::string& final_path, uint64_t epoch,
                                const DownloadOptions& options, uint64_t base, uint64_t total,
                                DownloadResult* result) {
  absl::Status last;
  absl::Duration backoff = options_.retry_backoff;
  for (int attempt = 0; attempt < std::max(1, options_.max_attempts); ++attempt) {
    if (attempt > 0) {
      if (!SleepUnlessCancelled(backoff, epoch)) return Interrupted();
      backoff *= 2;
    }
    // A part longer than the file cannot be ours: start it again.
    auto writer = core::AtomicFileWriter::OpenForResume(final_path, file.size_bytes());
    if (!writer.ok()) return LocalFileError(writer.status());
    core::AtomicFileWriter& out = **writer;
    uint64_t offset = out.offset();
    core::Sha256 sha;
    absl::Status s = LocalFileError(core::HashFilePrefix(out.temp_path(), offset, &sha));
    if (!s.ok()) return s;
    if (attempt == 0) result->resumed_bytes += offset;
    if (options.on_progress) options.on_progress(base + offset, total);

    grpc::ClientContext ctx;
    PrepareContext(&ctx, false);
    v1::DownloadArtifactRequest req;
    req.set_job_id(job_id);
    req.set_file_name(file.name());
    req.set_offset(offset);
    ActiveCall active(this, &ctx, epoch);
    // Raw messages: a chunk's bytes are copied once, from gRPC's slices
    // into the pipeline's buffers (not first into a protobuf string); a
    // message of another shape (the first, with the FileInfo) goes
    // through protobuf.
    const grpc::internal::RpcMethod method(kDownloadArtifactMethod,
                                           grpc::internal::RpcMethod::SERVER_STREAMING);
    std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
        grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(channel_.get(), method, &ctx,
                                                                      req));
    grpc::ByteBuffer message;
    std::vector<grpc::Slice> slices;
    api::ChunkView view;
    v1::DownloadChunk parsed;
    absl::Status write_error;
    {
      DownloadPipeline pipeline(&out, &sha);
      while (reader->Read(&message)) {
        slices.clear();
        if (!message.Dump(&slices).ok() || !api::ParseDownloadChunk(slices, &view)) {
          if (!grpc::SerializationTraits<v1::DownloadChunk>::Deserialize(&message, &parsed).ok()) {
            write_error = absl::DataLossError("the server sent a malformed download chunk");
            ctx.TryCancel();
            break;
          }
          view = api::ChunkView();
          view.offset = parsed.offset();
          view.data.push_back(parsed.data());
          view.size = parsed.data().size();
        }
        if (view.offset != offset) {
          write_error = absl::DataLossError("the server sent a chunk at an unexpected offset");
          ctx.TryCancel();
          break;
        }
        for (absl::string_view piece : view.data) {
          write_error = LocalFileError(pipeline.Append(piece));
          if (!write_error.ok()) break;
        }
        if (!write_error.ok()) {
          ctx.TryCancel();
          break;
        }
        offset += view.size;
        result->bytes_received += view.size;
        if (options.on_progress) options.on_progress(base + offset, total);
      }
      // What was received is written (a prefix to resume from) and hashed.
      absl::Status written = LocalFileError(pipeline.Finish());
      if (write_error.ok()) write_error = written;
    }
    absl::Status status = FromGrpcStatus(reader->Finish());
    if (!write_error.ok()) return write_error;
    if (!status.ok() || offset != file.size_bytes()) {
      if (Epoch() != epoch) return Interrupted();
      last = status.ok() ? absl::UnavailableError("the download stream ended early") : status;
      if (Retryable(last.code())) continue;
      return last;
    }
    std::string digest = sha.FinishHex();
    if (digest != file.sha256()) {
      out.Discard();
      return absl::DataLossError(absl::StrCat(file.name(), ": sha256 mismatch after download (got ",
                                              digest, ", expected ", file.sha256(),
                                              "); the partial file was removed, download again"));
    }
    s = LocalFileError(out.Commit());
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
  if (job->report().dry_run()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " was a dry run: nothing was written; its report holds the plan"));
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

}  // namespace quantd::client
