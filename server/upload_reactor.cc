// UploadModel: a client-streaming reactor. Reads one message at a time and
// appends it to the upload's part files through an UploadWriter.
#include <memory>

#include "absl/strings/str_cat.h"
#include "quantd/server/auth.h"
#include "quantd/server/executor.h"
#include "quantd/server/translate.h"
#include "quantd/server/upload_streams.h"
#include "reactors.h"

namespace quantd::server {
namespace {

std::string UploadFailureReason(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kDataLoss:
      return "digest_mismatch";
    case absl::StatusCode::kResourceExhausted:
      return "resource_exhausted";
    case absl::StatusCode::kInvalidArgument:
      return "invalid_argument";
    case absl::StatusCode::kFailedPrecondition:
      return "incomplete";
    case absl::StatusCode::kUnauthenticated:
      return "unauthenticated";
    case absl::StatusCode::kCancelled:
      return "cancelled";
    case absl::StatusCode::kAborted:
      return "aborted";
    default:
      break;
  }
  return "internal";
}

class UploadReactor final : public grpc::ServerReadReactor<v1::UploadRequest> {
 public:
  UploadReactor(const ServiceContext* ctx, grpc::CallbackServerContext* context,
                v1::Model* response)
      : ctx_(ctx), context_(context), response_(response) {
    // Every stream is counted from its start, so refusals before the header
    // is accepted (auth, limits, bad names) pair up with End() as failures.
    ctx_->metrics->UploadStarted();
    absl::Status st = ctx_->auth->Check(*context);
    if (st.ok() && ctx_->draining != nullptr && ctx_->draining->load()) {
      st = absl::UnavailableError("the server is shutting down; resume the upload later");
    }
    if (st.ok() && ctx_->upload_streams != nullptr) {
      st = ctx_->upload_streams->Add(context);
      registered_ = st.ok();
    }
    if (!st.ok()) {
      End(st);
      return;
    }
    StartRead(&request_);
  }

  // File writes, digests and the commit's fsync run on the I/O executor;
  // only one read is outstanding, so at most one task per upload runs.
  void OnReadDone(bool ok) override {
    if (registered_) ctx_->upload_streams->Touch(context_, /*busy=*/true);
    ctx_->io->Schedule([this, ok] { Process(ok); });
  }

  void OnDone() override {
    if (registered_) ctx_->upload_streams->Remove(context_);
    delete this;
  }

 private:
  void Process(bool ok) {
    if (!ok) {
      // Cancelled (by the client, or by the server as idle): the bytes
      // received stay for a resume.
      End(context_->IsCancelled() ? absl::CancelledError("the upload stream was cancelled "
                                                         "(by the client, or idle for longer "
                                                         "than --upload-idle-seconds)")
                                  : EndOfStream());
      return;
    }
    absl::Status st = Handle();
    if (registered_) ctx_->upload_streams->Touch(context_, /*busy=*/false);
    if (!st.ok() || done_) {
      End(st);
      return;
    }
    StartRead(&request_);
  }

  absl::Status Handle() {
    switch (request_.kind_case()) {
      case v1::UploadRequest::kHeader: {
        if (writer_ != nullptr) return absl::InvalidArgumentError("the header was sent twice");
        // Content-addressed: a model the server already has needs no bytes.
        auto existing = ctx_->uploads->FindCommittedModel(request_.header());
        if (existing.ok()) {
          *response_ = *std::move(existing);
          done_ = true;
          ctx_->logger->Info("upload skipped: model already stored",
                             {{"model_id", response_->model_id()}});
          return absl::OkStatus();
        }
        auto writer = ctx_->uploads->OpenUpload(request_.header());
        if (!writer.ok()) return writer.status();
        writer_ = *std::move(writer);
        ctx_->logger->Info("upload opened",
                           {{"upload_id", writer_->upload_id()},
                            {"committed_bytes", absl::StrCat(writer_->committed_bytes())},
                            {"total_bytes", absl::StrCat(writer_->total_bytes())}});
        return absl::OkStatus();
      }
      case v1::UploadRequest::kChunk: {
        if (writer_ == nullptr) {
          return absl::InvalidArgumentError("the first message must be the upload header");
        }
        const auto& chunk = request_.chunk();
        absl::Status st = writer_->Append(chunk.offset(), chunk.data());
        if (st.ok()) ctx_->metrics->UploadBytes(chunk.data().size());
        return st;
      }
      case v1::UploadRequest::kFinish:
        return Commit(request_.finish());
      case v1::UploadRequest::KIND_NOT_SET:
        break;
    }
    return absl::InvalidArgumentError("empty upload message");
  }

  absl::Status Commit(const v1::UploadFinish& finish) {
    if (writer_ == nullptr) {
      return absl::InvalidArgumentError("the first message must be the upload header");
    }
    auto model = writer_->Finish(finish);
    if (!model.ok()) return model.status();
    *response_ = *std::move(model);
    done_ = true;
    ctx_->metrics->SetStoreBytes(ctx_->blobs->used_bytes(), ctx_->blobs->FreeDiskBytes());
    ctx_->logger->Info("model committed", {{"upload_id", writer_->upload_id()},
                                           {"model_id", response_->model_id()},
                                           {"bytes", absl::StrCat(response_->size_bytes())}});
    return absl::OkStatus();
  }

  // The client closed its side without a finish message.
  absl::Status EndOfStream() {
    if (writer_ == nullptr) return absl::InvalidArgumentError("no upload header received");
    if (writer_->committed_bytes() == writer_->total_bytes()) {
      return Commit(v1::UploadFinish());  // digests came in the header
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "upload ", writer_->upload_id(), " incomplete: ", writer_->committed_bytes(), " of ",
        writer_->total_bytes(), " bytes received; resume from GetUploadStatus().committed_bytes"));
  }

  void End(const absl::Status& st) {
    ctx_->metrics->UploadFinished(st.ok(), st.ok() ? "" : UploadFailureReason(st));
    if (!st.ok()) {
      ctx_->logger->Info("upload ended", {{"upload_id", writer_ ? writer_->upload_id() : ""},
                                          {"status", st.ToString()}});
    }
    writer_.reset();  // releases the upload for a resume
    Finish(ToGrpcStatus(st));
  }

  const ServiceContext* const ctx_;
  grpc::CallbackServerContext* const context_;
  v1::Model* const response_;
  bool registered_ = false;  // counted in ctx_->upload_streams
  v1::UploadRequest request_;
  std::unique_ptr<UploadWriter> writer_;
  bool done_ = false;
};

}  // namespace

grpc::ServerReadReactor<v1::UploadRequest>* NewUploadReactor(const ServiceContext* ctx,
                                                             grpc::CallbackServerContext* context,
                                                             v1::Model* response) {
  return new UploadReactor(ctx, context, response);
}

}  // namespace quantd::server
