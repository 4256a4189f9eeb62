// DownloadArtifact: a server-streaming reactor that sends one artifact file
// from the requested offset in fixed-size chunks, one write in flight.
#include <memory>

#include "absl/strings/str_cat.h"
#include "quantd/server/auth.h"
#include "quantd/server/executor.h"
#include "quantd/server/ids.h"
#include "quantd/server/translate.h"
#include "reactors.h"

namespace quantd::server {
namespace {

class DownloadReactor final : public grpc::ServerWriteReactor<v1::DownloadChunk> {
 public:
  DownloadReactor(const ServiceContext* ctx, grpc::CallbackServerContext* context,
                  const v1::DownloadArtifactRequest* request)
      : ctx_(ctx) {
    absl::Status st = Open(*context, *request);
    if (!st.ok()) {
      Finish(ToGrpcStatus(st));
      return;
    }
    *chunk_.mutable_file() = reader_->info();
    ctx_->io->Schedule([this] { SendNext(); });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    ctx_->metrics->DownloadBytes(chunk_.data().size());
    chunk_.clear_file();
    if (offset_ >= reader_->info().size_bytes()) {
      Finish(grpc::Status::OK);
      return;
    }
    ctx_->io->Schedule([this] { SendNext(); });  // file reads off the callback thread
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Open(const grpc::CallbackServerContext& context,
                    const v1::DownloadArtifactRequest& request) {
    absl::Status st = ctx_->auth->Check(context);
    if (!st.ok()) return st;
    st = ValidateJobId(request.job_id());
    if (!st.ok()) return st;
    auto job = ctx_->jobs->Get(request.job_id());
    if (!job.ok()) return job.status();
    if (job->state() != v1::JOB_STATE_SUCCEEDED) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", request.job_id(), " is ", v1::JobState_Name(job->state()),
                       "; artifacts exist once it SUCCEEDED (WatchJob to wait)"));
    }
    if (job->report().dry_run()) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", request.job_id(),
                       " was a dry run: nothing was written; its report holds the plan"));
    }
    auto reader = ctx_->blobs->OpenArtifactFile(request.job_id(), request.file_name());
    if (!reader.ok()) return reader.status();
    reader_ = *std::move(reader);
    if (request.offset() > reader_->info().size_bytes()) {
      return absl::OutOfRangeError(absl::StrCat("offset ", request.offset(), " is beyond the ",
                                                reader_->info().size_bytes(), "-byte file"));
    }
    offset_ = request.offset();
    return absl::OkStatus();
  }

  void SendNext() {
    absl::Status st = reader_->ReadAt(offset_, ctx_->chunk_bytes, chunk_.mutable_data());
    if (st.ok() && chunk_.data().empty() && offset_ < reader_->info().size_bytes()) {
      st = absl::DataLossError("the artifact file is shorter than its manifest");
    }
    if (!st.ok()) {
      Finish(ToGrpcStatus(st));
      return;
    }
    chunk_.set_offset(offset_);
    offset_ += chunk_.data().size();
    StartWrite(&chunk_);
  }

  const ServiceContext* const ctx_;
  std::unique_ptr<ArtifactReader> reader_;
  uint64_t offset_ = 0;
  v1::DownloadChunk chunk_;
};

}  // namespace

grpc::ServerWriteReactor<v1::DownloadChunk>* NewDownloadReactor(
    const ServiceContext* ctx, grpc::CallbackServerContext* context,
    const v1::DownloadArtifactRequest* request) {
  return new DownloadReactor(ctx, context, request);
}

}  // namespace quantd::server
