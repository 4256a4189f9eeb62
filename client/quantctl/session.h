// Session: quantctl's connection to one quantd server and the operations the
// commands are built from, returning absl::Status with the server's canonical
// code and message.
//
// Built on the client library (quantd::client::Client: channel, TLS, token,
// unary calls, Watch with reattach, Health). Upload and Download are composed
// here over the library's stub() and PrepareContext() because quantctl needs
// what the library's versions do not offer yet: byte progress for the live
// bars, a rate limit, Interrupt() for Ctrl-C, skipping an upload the server
// already has, and downloading to a chosen file name (OUTPUT, not the
// artifact's name).
//
// Resumption across runs: an upload's id is derived from the model's content
// ("qc-" + the first 40 hex digits of the model id), so running the same
// upload again continues from the server's committed bytes; a download
// continues from "<target>.part".
//
// Thread safety: all methods may be called from any thread, concurrently;
// Interrupt() is meant to be called from a signal-handling thread while
// another thread is inside a streaming call.
#ifndef QUANTD_CLIENT_QUANTCTL_SESSION_H_
#define QUANTD_CLIENT_QUANTCTL_SESSION_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "quantd/client/client.h"
#include "quantd/v1/quantd.grpc.pb.h"

namespace quantd::quantctl {

struct SessionOptions {
  std::string server = "127.0.0.1:7443";  // HOST:PORT
  std::string token;                      // bearer token; empty: none
  bool tls = false;                       // implied by any tls_* file
  std::string tls_ca;                     // PEM roots; empty: system roots
  std::string tls_cert;                   // client certificate (mutual TLS)
  std::string tls_key;
  std::string tls_server_name;      // override the name checked in the certificate
  double rpc_timeout_seconds = 30;  // unary calls; 0: none
  uint64_t limit_rate = 0;          // transfer bytes/second; 0: unlimited
};

// (done, total) bytes of the current transfer.
using TransferFn = std::function<void(uint64_t done, uint64_t total)>;

// A local file to upload and its digest.
struct LocalFile {
  std::string path;
  std::string name;  // as sent: the path's file name
  uint64_t size = 0;
  std::string sha256;
};

// sha256 (lower-case hex) of a file. NotFound, or DataLoss on read errors.
absl::StatusOr<std::string> Sha256File(const std::string& path);
// The server's model id for these files: "sha256:<hex>" of
// "quantd-model-v1\n" + "<name>\n<size>\n<sha256>\n" per file (as the
// server's BlobStore computes it). Only used to skip an upload the server
// already has; if the formulas ever differ, quantctl merely uploads again.
std::string ModelIdOf(const std::vector<LocalFile>& files);
// Stats and hashes `paths` (first: the model proper), reporting hashed bytes
// over all files to `progress` (may be empty). NotFound for a missing file;
// DataLoss for read errors.
absl::StatusOr<std::vector<LocalFile>> DescribeFiles(const std::vector<std::string>& paths,
                                                     const TransferFn& progress);

class Session {
 public:
  // Connects lazily; fails only on unreadable TLS files (InvalidArgument).
  // Watch gives up after ~10 s without a server (exit code 4).
  static absl::StatusOr<std::unique_ptr<Session>> Open(const SessionOptions& options);

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Uploads `files` unless the server has the same content (`*skipped`).
  // Resumes a broken upload, also one left by an earlier run. Retries
  // transient failures (UNAVAILABLE, ABORTED, an unfinished stream) a few
  // times from the server's committed bytes.
  absl::StatusOr<v1::Model> Upload(const std::vector<LocalFile>& files,
                                   const std::map<std::string, std::string>& labels,
                                   const TransferFn& progress, bool* skipped);

  absl::StatusOr<v1::Job> Submit(const v1::SubmitJobRequest& request);
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id);
  absl::Status DeleteJob(const std::string& job_id);

  // Streams the job's events to `on_event` until a final state and returns
  // the final job (the library's Watch: reattaches when a restarting server
  // breaks the stream). Not interruptible: Ctrl-C handlers cancel the job
  // (the watch then ends) or exit.
  absl::StatusOr<v1::Job> Watch(const std::string& job_id,
                                const std::function<void(const v1::Job&)>& on_event);

  // Downloads artifact file `file` of `job_id` to `path`: bytes go to
  // "<path>.part" (resumed when it exists), the sha256 of the whole file is
  // checked (DataLoss and the part file removed on mismatch), then the part
  // file is fsynced and renamed to `path`.
  absl::Status Download(const std::string& job_id, const v1::FileInfo& file,
                        const std::string& path, const TransferFn& progress);

  // grpc.health.v1 Check of the whole server: "SERVING", "NOT_SERVING", ...
  absl::StatusOr<std::string> Health();

  // Aborts the calls in progress — the library's (Client::CancelInFlight)
  // and this class's transfer streams; they return CANCELLED. Later
  // transfers and watches fail with CANCELLED too.
  void Interrupt();
  bool interrupted() const { return interrupted_.load(); }

 private:
  Session(const SessionOptions& options, std::unique_ptr<client::Client> client);
  // A context with the token and, for unary calls, the deadline.
  void Prepare(grpc::ClientContext* context, bool unary) const {
    client_->PrepareContext(context, unary);
  }
  // Registers the in-flight streaming context so Interrupt() can cancel it.
  void SetActive(grpc::ClientContext* context);
  // Sleeps so that `since_start` bytes take at least since_start/limit_rate s.
  void Throttle(std::chrono::steady_clock::time_point start, uint64_t since_start);
  absl::StatusOr<v1::Model> UploadOnce(const std::vector<LocalFile>& files,
                                       const std::string& upload_id, uint64_t offset,
                                       const std::map<std::string, std::string>& labels,
                                       const TransferFn& progress);

  const SessionOptions options_;
  const std::unique_ptr<client::Client> client_;
  v1::Quantd::Stub* const stub_;  // owned by client_

  std::atomic<bool> interrupted_{false};
  absl::Mutex mu_;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// grpc::Status -> absl::Status (the codes are the same numbers).
inline absl::Status FromGrpc(const grpc::Status& status) { return client::FromGrpcStatus(status); }

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_SESSION_H_
