// Session: quantctl's connection to one quantd server — the client library's
// Client (quantd::client::Client: channel, TLS, token, resumable verified
// transfers, Watch with reattach) plus the little quantctl adds on top:
// options from flags (PEM files), a transfer rate limit (--limit-rate),
// Interrupt() for Ctrl-C that also fails later calls, and the messages that
// tell the user how to resume.
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

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quantd/client/client.h"
#include "quantd/v1/quantd.pb.h"

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
  // Hash the files before uploading (DescribeFiles) so the header carries
  // the digests and the server skips a model it has; otherwise each file is
  // read once and hashed while it streams (--hash-first).
  bool hash_first = false;
};

// (done, total) bytes of the current transfer.
using TransferFn = std::function<void(uint64_t done, uint64_t total)>;

// A local file to upload, its identity on disk and (when hashed first) its
// digest.
struct LocalFile {
  std::string path;
  std::string name;  // as sent: the path's file name
  uint64_t size = 0;
  std::string sha256;  // empty: hashed while it uploads
  // What changes whenever the file's content may have changed (as git's
  // index and ccache tell unchanged files): device, inode, modification and
  // status-change times in nanoseconds.
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

// Stats `paths` (first: the model proper) and, when `hash`, hashes them,
// reporting hashed bytes over all files to `progress` (may be empty).
// NotFound for a missing file; DataLoss for read errors.
absl::StatusOr<std::vector<LocalFile>> DescribeFiles(const std::vector<std::string>& paths,
                                                     bool hash, const TransferFn& progress);

// The upload id quantctl uses for `files`: from their digests when known
// ("qc-" + 40 hex digits of the model id, the same on every machine), else
// from their names, sizes and on-disk identities on this host ("qf-" + 40
// hex digits). Running the same command again finds the same upload, so it
// resumes a broken upload and skips a finished one; a changed file gets a
// new id.
std::string UploadIdFor(const std::vector<LocalFile>& files);

class Session {
 public:
  // Connects lazily; fails only on unreadable TLS files (InvalidArgument).
  // Watch gives up after ~10 s without a server (exit code 4).
  static absl::StatusOr<std::unique_ptr<Session>> Open(const SessionOptions& options);

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The library client, for the unary calls (Submit, GetJob, ListJobs,
  // Cancel, DeleteJob).
  client::Client& client() { return *client_; }

  // Uploads `files` unless the server has the same content (`*skipped`:
  // known when the digests are, or when these unchanged files were uploaded
  // before under the same UploadIdFor). Resumes a broken upload, also one
  // left by an earlier run. Files without a digest are read once, hashed
  // while they stream; the digests go in the upload's finish message.
  // `model_name`: UploadHeader.model_name (a checkpoint folder's name).
  absl::StatusOr<v1::Model> Upload(const std::vector<LocalFile>& files,
                                   const std::string& model_name,
                                   const std::map<std::string, std::string>& labels,
                                   const TransferFn& progress, bool* skipped);

  // Streams the job's events to `on_event` until a final state and returns
  // the final job (Client::Watch: reattaches when a restarting server breaks
  // the stream). CANCELLED after Interrupt().
  absl::StatusOr<v1::Job> Watch(const std::string& job_id,
                                const std::function<void(const v1::Job&)>& on_event);

  // Downloads artifact file `file` of `job_id` to `path` (Client::DownloadFile:
  // via "<path>.part", resumed, sha256-checked, fsynced, renamed). Local
  // write failures are DataLoss.
  absl::Status Download(const std::string& job_id, const v1::FileInfo& file,
                        const std::string& path, const TransferFn& progress);

  // grpc.health.v1 Check of the whole server: "SERVING", "NOT_SERVING", ...
  absl::StatusOr<std::string> Health();

  // Aborts the calls in progress (Client::CancelInFlight); they return
  // CANCELLED. Later transfers and watches fail with CANCELLED too.
  void Interrupt();
  bool interrupted() const { return interrupted_.load(); }

 private:
  Session(const SessionOptions& options, std::unique_ptr<client::Client> client);
  // `progress` throttled to options_.limit_rate.
  std::function<void(uint64_t, uint64_t)> Throttled(const TransferFn& progress) const;
  // A transfer's failure as the user sees it: CANCELLED with `resume_hint`
  // after Interrupt(), local file errors as DataLoss.
  absl::Status TransferError(const absl::Status& status, const char* resume_hint) const;

  const SessionOptions options_;
  const std::unique_ptr<client::Client> client_;
  std::atomic<bool> interrupted_{false};
};

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_SESSION_H_
