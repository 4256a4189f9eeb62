// Client: the connection (channel, credentials, per-call contexts,
// CancelInFlight) and every unary rpc. Uploads, downloads and watches live
// in upload.cc, download.cc and watch.cc.
#include "quantd/client/client.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_internal.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace quantd::client {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

bool IsLocalFileError(const absl::Status& status) {
  return status.GetPayload(kLocalFileErrorPayload).has_value();
}

// ---------------------------------------------------------------- connection

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
      return absl::InvalidArgumentError(
          absl::StrCat("cannot create a channel to ", options.target));
    }
  }
  return std::unique_ptr<Client>(new Client(options, std::move(channel)));
}

Client::Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(v1::Quantd::NewStub(channel_)) {}

Client::ActiveCall::ActiveCall(Client* client, grpc::ClientContext* ctx, uint64_t epoch)
    : client_(client), ctx_(ctx) {
  absl::MutexLock lock(&client_->mu_);
  client_->active_.push_back(ctx_);
  if (client_->epoch_ != epoch) ctx_->TryCancel();
}

Client::ActiveCall::~ActiveCall() {
  absl::MutexLock lock(&client_->mu_);
  auto& v = client_->active_;
  v.erase(std::remove(v.begin(), v.end(), ctx_), v.end());
}

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

void Client::PrepareContext(grpc::ClientContext* context, bool unary) const {
  if (!options_.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  if (unary && options_.rpc_timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  }
}

template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> Client::Unary(Stub* stub,
                                       grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                                    const Request&, Response*),
                                       const Request& request) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, /*unary=*/true);
  ActiveCall active(this, &ctx, Epoch());
  Response response;
  absl::Status st = FromGrpcStatus((stub->*method)(&ctx, request, &response));
  if (!st.ok()) return st;
  return response;
}

// ---------------------------------------------------------------- unary rpcs

absl::StatusOr<v1::UploadStatus> Client::GetUploadStatus(const std::string& upload_id) {
  v1::GetUploadStatusRequest req;
  req.set_upload_id(upload_id);
  return Unary(stub_.get(), &v1::Quantd::Stub::GetUploadStatus, req);
}

absl::Status Client::AbortUpload(const std::string& upload_id) {
  v1::AbortUploadRequest req;
  req.set_upload_id(upload_id);
  return Unary(stub_.get(), &v1::Quantd::Stub::AbortUpload, req).status();
}

absl::StatusOr<v1::Model> Client::GetModel(const std::string& model_id) {
  v1::GetModelRequest req;
  req.set_model_id(model_id);
  return Unary(stub_.get(), &v1::Quantd::Stub::GetModel, req);
}

absl::Status Client::DeleteModel(const std::string& model_id) {
  v1::DeleteModelRequest req;
  req.set_model_id(model_id);
  return Unary(stub_.get(), &v1::Quantd::Stub::DeleteModel, req).status();
}

absl::StatusOr<v1::Job> Client::Submit(const v1::SubmitJobRequest& request) {
  return Unary(stub_.get(), &v1::Quantd::Stub::SubmitJob, request);
}

absl::StatusOr<v1::Job> Client::GetJob(const std::string& job_id) {
  v1::GetJobRequest req;
  req.set_job_id(job_id);
  return Unary(stub_.get(), &v1::Quantd::Stub::GetJob, req);
}

absl::StatusOr<v1::ListJobsResponse> Client::ListJobs(const v1::ListJobsRequest& request) {
  return Unary(stub_.get(), &v1::Quantd::Stub::ListJobs, request);
}

absl::StatusOr<v1::Job> Client::Cancel(const std::string& job_id) {
  v1::CancelJobRequest req;
  req.set_job_id(job_id);
  return Unary(stub_.get(), &v1::Quantd::Stub::CancelJob, req);
}

absl::Status Client::DeleteJob(const std::string& job_id) {
  v1::DeleteJobRequest req;
  req.set_job_id(job_id);
  return Unary(stub_.get(), &v1::Quantd::Stub::DeleteJob, req).status();
}

absl::StatusOr<bool> Client::Health() {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest req;
  auto resp = Unary(health.get(), &grpc::health::v1::Health::Stub::Check, req);
  if (!resp.ok()) return resp.status();
  return resp->status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

}  // namespace quantd::client
