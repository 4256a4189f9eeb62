// quantd::client::Client: the C++ client of the Quantd service.
//
// Thin: it speaks quantd.v1 over gRPC and adds only what every caller needs —
// chunked, resumable, digest-checked uploads; resumable, verified, atomic
// downloads; a Watch that reattaches; and Quantize (upload + submit + watch +
// download in one call). Of the core it links only quantd_base (SHA-256, the
// model-id formula, atomic files), never the quantization code.
//
//   auto client = quantd::client::Client::Connect({.target = "127.0.0.1:7443"});
//   if (!client.ok()) ...
//   quantd::v1::Recipe recipe;
//   recipe.set_precision(quantd::v1::PRECISION_FP16);
//   auto result = (*client)->Quantize({"model.onnx", "model.onnx.data"}, recipe, "out/");
//
// Errors are absl::Status with the server's canonical code and message
// (see proto/quantd/v1/quantd.proto for what each code means).
//
// Thread safety: a Client is thread-safe; calls may run concurrently (they
// share one channel). Callbacks run on the calling thread.
#ifndef QUANTD_CLIENT_CLIENT_H_
#define QUANTD_CLIENT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "quantd/v1/quantd.grpc.pb.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::client {

struct ClientOptions {
  std::string target = "127.0.0.1:7443";  // HOST:PORT
  std::string token;                      // bearer token; empty: none
  // TLS: off unless `tls`. Root certificates in PEM (empty: system roots);
  // a client certificate and key (PEM) for mutual TLS.
  bool tls = false;
  std::string tls_root_certs_pem;
  std::string tls_client_cert_pem;
  std::string tls_client_key_pem;
  std::string tls_server_name;                     // override the name checked in the certificate
  size_t chunk_bytes = 256 << 10;                  // upload chunk size (measured best on loopback)
  absl::Duration rpc_timeout = absl::Seconds(60);  // unary calls
  int max_attempts = 6;                            // per upload/download/watch, on retryable errors
  // Watch gives up after this many reattaches in a row that brought no event;
  // 0: 4 * max_attempts.
  int watch_max_failures = 0;
  absl::Duration retry_backoff = absl::Milliseconds(200);  // doubles per attempt
  // Use this channel instead of creating one from target/tls (tests, sharing).
  std::shared_ptr<grpc::Channel> channel;
};

struct UploadOptions {
  // Reuse an id to resume an upload started earlier (even by another
  // process); empty: a random id. Either way, UploadResult reports it. If
  // that upload completed but its model was deleted since, the upload
  // starts afresh under "<upload_id>-<n>".
  std::string upload_id;
  // The files' sha256 (lower-case hex, one per path) when the caller knows
  // them; empty: computed while streaming. Known digests go in the header:
  // a model the server already has is then not sent again
  // (UploadResult::skipped).
  std::vector<std::string> sha256;
  std::map<std::string, std::string> labels;
  v1::ModelFormat format = v1::MODEL_FORMAT_UNSPECIFIED;
  // The model's name (UploadHeader.model_name): required for a Hugging Face
  // checkpoint (its folder's name, see checkpoint_folder.h); empty otherwise.
  std::string model_name;
  // Byte progress (bytes the server holds so far, total), called on the
  // calling thread when a stream opens (with the bytes resumed from) and
  // after each chunk; may be empty. It may sleep (e.g. to limit the rate).
  std::function<void(uint64_t done, uint64_t total)> on_progress;
};

struct DownloadOptions {
  // Byte progress (done, total) over all files of the call, called on the
  // calling thread when a file's stream opens and after each chunk; may be
  // empty. It may sleep (e.g. to limit the rate).
  std::function<void(uint64_t done, uint64_t total)> on_progress;
};

struct UploadResult {
  v1::Model model;
  std::string upload_id;
  uint64_t bytes_sent = 0;    // payload bytes this call sent
  uint64_t resumed_from = 0;  // bytes the server already had at the first attempt
  bool skipped = false;       // the server already had the model; no bytes were needed
};

struct DownloadResult {
  std::vector<std::string> paths;  // final files, model first
  uint64_t bytes_received = 0;
  uint64_t resumed_bytes = 0;  // bytes taken from earlier .part files
};

struct QuantizeOptions {
  int priority = 0;
  std::map<std::string, std::string> labels;
  std::string idempotency_key;
  std::function<void(const v1::JobEvent&)> on_event;  // progress; may be empty
};

struct QuantizeResult {
  v1::Model model;
  v1::Job job;  // final state (SUCCEEDED)
  DownloadResult download;
};

class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // --- models ---
  // Uploads the files of one model (the model file first, then e.g. its
  // external data, each under its base name). With UploadOptions::sha256
  // first asks whether the server has the model (then sends nothing);
  // otherwise streams in chunks while hashing. On a broken stream asks
  // GetUploadStatus and resumes from the committed bytes (up to
  // max_attempts). DataLoss if the server's digest check fails;
  // ResourceExhausted over the server's limits.
  absl::StatusOr<UploadResult> Upload(const std::vector<std::string>& paths,
                                      const UploadOptions& options = {});
  absl::StatusOr<v1::UploadStatus> GetUploadStatus(const std::string& upload_id);
  // Discards an unfinished upload and the room it reserved on the server.
  absl::Status AbortUpload(const std::string& upload_id);
  absl::StatusOr<v1::Model> GetModel(const std::string& model_id);
  absl::Status DeleteModel(const std::string& model_id);

  // --- jobs ---
  absl::StatusOr<v1::Job> Submit(const v1::SubmitJobRequest& request);
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id);
  absl::Status DeleteJob(const std::string& job_id);
  // Streams the job's events to `on_event` (may be empty) until it is
  // final, reattaching after UNAVAILABLE/CANCELLED from a restarting
  // server; returns the final job. DeadlineExceeded after `timeout`.
  absl::StatusOr<v1::Job> Watch(const std::string& job_id,
                                const std::function<void(const v1::JobEvent&)>& on_event,
                                absl::Duration timeout = absl::InfiniteDuration());

  // --- artifacts ---
  // Downloads every artifact file of a SUCCEEDED job into `dest_dir`
  // (created if needed). Each file is written to "<name>.part" (resumed
  // from its size when present), its sha256 checked, then fsynced and
  // renamed into place. DataLoss on a digest mismatch (the .part is removed).
  absl::StatusOr<DownloadResult> Download(const std::string& job_id, const std::string& dest_dir,
                                          const DownloadOptions& options = {});
  // Downloads one artifact file (`file` as listed in the job's artifact) to
  // `path`, the same way: via "<path>.part", resumed, verified, fsynced and
  // renamed. The parent directory must exist.
  absl::StatusOr<DownloadResult> DownloadFile(const std::string& job_id, const v1::FileInfo& file,
                                              const std::string& path,
                                              const DownloadOptions& options = {});

  // Upload + Submit + Watch + Download. A job that ends FAILED or CANCELLED
  // returns its error code and message as the status. A dry run
  // (recipe.dry_run) downloads nothing: its plan is in the job's report. For a Hugging Face
  // checkpoint (SelectCheckpointFiles), set recipe.model_name to the folder's
  // name: it is also the upload's model name.
  absl::StatusOr<QuantizeResult> Quantize(const std::vector<std::string>& paths,
                                          const v1::Recipe& recipe, const std::string& dest_dir,
                                          const QuantizeOptions& options = {});

  // grpc.health.v1 Check of the whole server: true when SERVING.
  absl::StatusOr<bool> Health();

  // Interrupts every call this client has in flight (Upload, Download,
  // Watch, unary calls, including their retry sleeps): they return
  // CANCELLED at once and do not retry. Safe from any thread (e.g. a
  // Ctrl-C handler thread). Calls started afterwards run normally. A
  // cancelled Download leaves its "<name>.part" for a later resume.
  void CancelInFlight();

  // The raw stub, for calls this class does not wrap.
  v1::Quantd::Stub* stub() { return stub_.get(); }
  // Adds the bearer token (if any) and, when `unary`, the rpc timeout.
  void PrepareContext(grpc::ClientContext* context, bool unary) const;

 private:
  class ActiveCall;  // registers a ClientContext for CancelInFlight
  Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel);
  // The one path of every unary rpc: prepares the context (token, rpc
  // timeout), registers it for CancelInFlight, calls `method` on `stub` and
  // maps the status. Defined in client.cc, where every unary rpc lives.
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<Response> Unary(Stub* stub,
                                 grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                                              Response*),
                                 const Request& request);
  // One file to `final_path`; progress is reported as base + bytes of total.
  absl::Status DownloadTo(const std::string& job_id, const v1::FileInfo& file,
                          const std::string& final_path, uint64_t epoch,
                          const DownloadOptions& options, uint64_t base, uint64_t total,
                          DownloadResult* result);
  uint64_t Epoch();
  // Sleeps `d` unless CancelInFlight() moves past `epoch`; false if it did.
  bool SleepUnlessCancelled(absl::Duration d, uint64_t epoch);

  const ClientOptions options_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<v1::Quantd::Stub> stub_;

  absl::Mutex mu_;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by CancelInFlight
  std::vector<grpc::ClientContext*> active_ ABSL_GUARDED_BY(mu_);
};

// grpc::Status -> absl::Status (same canonical code and message).
absl::Status FromGrpcStatus(const grpc::Status& status);
// Lower-case hex sha256 of a file; `on_progress` (may be empty) gets the
// bytes hashed so far after each block.
absl::StatusOr<std::string> Sha256OfFile(
    const std::string& path, const std::function<void(uint64_t hashed)>& on_progress = nullptr);
// The id the server gives a model with these files (name, size, sha256 each,
// model first): Model.model_id's formula in quantd.proto.
std::string ModelIdOf(const std::vector<v1::FileInfo>& files);

// Errors from the local file system (open, read, write, fsync, rename of the
// caller's files) carry this payload, so callers can tell them from the
// server's errors, which may have the same code.
inline constexpr char kLocalFileErrorPayload[] = "quantd.dev/client/local-file";
bool IsLocalFileError(const absl::Status& status);

}  // namespace quantd::client

#endif  // QUANTD_CLIENT_CLIENT_H_
