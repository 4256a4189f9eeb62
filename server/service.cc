#include "quantd/server/service.h"

#include "quantd/server/auth.h"
#include "quantd/server/executor.h"
#include "quantd/server/ids.h"
#include "quantd/server/translate.h"
#include "reactors.h"

namespace quantd::server {
namespace {

// Finishes a unary call with `status`.
grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Copies a StatusOr's value into the response, then finishes.
template <typename T>
grpc::ServerUnaryReactor* DoneWith(grpc::CallbackServerContext* context, absl::StatusOr<T> result,
                                   T* response) {
  if (result.ok()) *response = *std::move(result);
  return Done(context, result.status());
}

// Runs `fn` (which may touch the disk or the journal) on the I/O executor
// and finishes the call with its status; the callback thread returns at once.
template <typename Fn>
grpc::ServerUnaryReactor* Async(const ServiceContext& ctx, grpc::CallbackServerContext* context,
                                Fn fn) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status st = ctx.auth->Check(*context); !st.ok()) {
    reactor->Finish(ToGrpcStatus(st));
    return reactor;
  }
  ctx.io->Schedule(
      [reactor, fn = std::move(fn)]() mutable { reactor->Finish(ToGrpcStatus(fn())); });
  return reactor;
}

template <typename T>
absl::Status Fill(absl::StatusOr<T> result, T* response) {
  if (result.ok()) *response = *std::move(result);
  return result.status();
}

}  // namespace

grpc::ServerReadReactor<grpc::ByteBuffer>* QuantdService::UploadModel(
    grpc::CallbackServerContext* context, grpc::ByteBuffer* response) {
  return NewUploadReactor(&ctx_, context, response);
}

grpc::ServerUnaryReactor* QuantdService::GetUploadStatus(grpc::CallbackServerContext* context,
                                                         const v1::GetUploadStatusRequest* request,
                                                         v1::UploadStatus* response) {
  return Async(ctx_, context, [this, request, response] {
    return Fill(ctx_.uploads->GetUploadStatus(request->upload_id()), response);
  });
}

grpc::ServerUnaryReactor* QuantdService::AbortUpload(grpc::CallbackServerContext* context,
                                                     const v1::AbortUploadRequest* request,
                                                     v1::AbortUploadResponse* response) {
  return Async(ctx_, context, [this, request] {
    absl::Status st = ctx_.uploads->AbortUpload(request->upload_id());
    if (st.ok()) {
      ctx_.logger->Info("upload aborted", {{"upload_id", request->upload_id()}});
      ctx_.metrics->SetStoreBytes(ctx_.blobs->used_bytes(), ctx_.blobs->FreeDiskBytes());
    }
    return st;
  });
}

grpc::ServerUnaryReactor* QuantdService::GetModel(grpc::CallbackServerContext* context,
                                                  const v1::GetModelRequest* request,
                                                  v1::Model* response) {
  return Async(ctx_, context, [this, request, response] {
    return Fill(ctx_.blobs->GetModel(request->model_id()), response);
  });
}

grpc::ServerUnaryReactor* QuantdService::DeleteModel(grpc::CallbackServerContext* context,
                                                     const v1::DeleteModelRequest* request,
                                                     v1::DeleteModelResponse* response) {
  return Async(ctx_, context,
               [this, request] { return server::DeleteModel(ctx_, request->model_id()); });
}

grpc::ServerUnaryReactor* QuantdService::SubmitJob(grpc::CallbackServerContext* context,
                                                   const v1::SubmitJobRequest* request,
                                                   v1::Job* response) {
  return Async(ctx_, context, [this, request, response] {
    return Fill(server::SubmitJob(ctx_, *request), response);
  });
}

grpc::ServerUnaryReactor* QuantdService::GetJob(grpc::CallbackServerContext* context,
                                                const v1::GetJobRequest* request,
                                                v1::Job* response) {
  if (absl::Status st = ctx_.auth->Check(*context); !st.ok()) return Done(context, st);
  if (absl::Status st = ValidateJobId(request->job_id()); !st.ok()) {
    return Done(context, st);
  }
  return DoneWith(context, ctx_.jobs->Get(request->job_id()), response);
}

grpc::ServerUnaryReactor* QuantdService::ListJobs(grpc::CallbackServerContext* context,
                                                  const v1::ListJobsRequest* request,
                                                  v1::ListJobsResponse* response) {
  if (absl::Status st = ctx_.auth->Check(*context); !st.ok()) return Done(context, st);
  auto list = ctx_.jobs->List(*request);
  // Per-tensor report details stay out of listings (GetJob has them).
  if (list.ok()) {
    for (v1::Job& job : *list->mutable_jobs()) {
      if (job.has_report()) job.mutable_report()->clear_tensors();
    }
  }
  return DoneWith(context, std::move(list), response);
}

grpc::ServerUnaryReactor* QuantdService::CancelJob(grpc::CallbackServerContext* context,
                                                   const v1::CancelJobRequest* request,
                                                   v1::Job* response) {
  return Async(ctx_, context, [this, request, response]() -> absl::Status {
    if (absl::Status st = ValidateJobId(request->job_id()); !st.ok()) return st;
    return Fill(ctx_.pool->Cancel(request->job_id()), response);
  });
}

grpc::ServerWriteReactor<v1::JobEvent>* QuantdService::WatchJob(
    grpc::CallbackServerContext* context, const v1::WatchJobRequest* request) {
  return NewWatchReactor(&ctx_, context, request);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* QuantdService::DownloadArtifact(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return NewDownloadReactor(&ctx_, context, request);
}

grpc::ServerUnaryReactor* QuantdService::DeleteJob(grpc::CallbackServerContext* context,
                                                   const v1::DeleteJobRequest* request,
                                                   v1::DeleteJobResponse* response) {
  return Async(ctx_, context,
               [this, request] { return server::DeleteJob(ctx_, request->job_id()); });
}

}  // namespace quantd::server
