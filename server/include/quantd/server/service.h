// QuantdService: the quantd.v1.Quantd gRPC service on the callback API.
//
// Thin: each handler authenticates, calls the domain logic (operations.h,
// BlobStore, JobStore, WorkerPool) and maps absl::Status to grpc::Status with
// ToGrpcStatus. Streaming calls are small reactors (reactors.h) that own
// their per-call state, never block on locks held by other calls, and delete
// themselves in OnDone.
//
// Thread safety: handlers run concurrently on gRPC's threads; the service
// holds only the ServiceContext (pointers to thread-safe parts).
#ifndef QUANTD_SERVER_SERVICE_H_
#define QUANTD_SERVER_SERVICE_H_

#include "quantd/server/operations.h"
#include "quantd/v1/quantd.grpc.pb.h"

namespace quantd::server {

// UploadModel takes raw messages (grpc::ByteBuffer, parsed by its reactor)
// so a chunk's bytes are not copied out of gRPC's buffers; DownloadArtifact
// sends raw messages whose bytes are referenced in the mapped file.
class QuantdService final
    : public v1::Quantd::WithRawCallbackMethod_UploadModel<
          v1::Quantd::WithRawCallbackMethod_DownloadArtifact<v1::Quantd::CallbackService>> {
 public:
  explicit QuantdService(ServiceContext ctx) : ctx_(std::move(ctx)) {}

  grpc::ServerReadReactor<grpc::ByteBuffer>* UploadModel(grpc::CallbackServerContext* context,
                                                         grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* AbortUpload(grpc::CallbackServerContext* context,
                                        const v1::AbortUploadRequest* request,
                                        v1::AbortUploadResponse* response) override;
  grpc::ServerUnaryReactor* GetUploadStatus(grpc::CallbackServerContext* context,
                                            const v1::GetUploadStatusRequest* request,
                                            v1::UploadStatus* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const v1::GetModelRequest* request,
                                     v1::Model* response) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* context,
                                        const v1::DeleteModelRequest* request,
                                        v1::DeleteModelResponse* response) override;
  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* context,
                                      const v1::SubmitJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const v1::CancelJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext* context,
                                                   const v1::WatchJobRequest* request) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* DownloadArtifact(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* DeleteJob(grpc::CallbackServerContext* context,
                                      const v1::DeleteJobRequest* request,
                                      v1::DeleteJobResponse* response) override;

 private:
  const ServiceContext ctx_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_SERVICE_H_
