// Helpers shared by the parts of quantd::client::Client (client.cc,
// upload.cc, download.cc, watch.cc); not part of the library's API.
//
// Thread safety: thread-safe free functions.
#ifndef QUANTD_CLIENT_CLIENT_INTERNAL_H_
#define QUANTD_CLIENT_CLIENT_INTERNAL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "quantd/client/client.h"

namespace quantd::client {

// Registers a call's context so CancelInFlight can TryCancel it. A call
// started in epoch E is cancelled at once if the epoch already moved on.
// Lives on the calling thread's stack for the duration of one call.
class Client::ActiveCall {
 public:
  ActiveCall(Client* client, grpc::ClientContext* ctx, uint64_t epoch);
  ~ActiveCall();
  ActiveCall(const ActiveCall&) = delete;
  ActiveCall& operator=(const ActiveCall&) = delete;

 private:
  Client* const client_;
  grpc::ClientContext* const ctx_;
};

}  // namespace quantd::client

namespace quantd::client::internal {

// Marks `status` as a local file system error (see IsLocalFileError); OK
// stays OK.
absl::Status LocalFileError(absl::Status status);

// errno -> a local file error "<what> <path>: <strerror>" (ErrnoToStatus).
absl::Status LocalErrnoError(int err, absl::string_view what, absl::string_view path);

// Codes after which resuming the same stream makes sense.
bool Retryable(absl::StatusCode code);

// What a call interrupted by CancelInFlight returns.
absl::Status Interrupted();

// 16 random bytes as hex: a fresh upload id.
std::string RandomId();

// A file name without directories, as the server's artifact names must be.
bool PlainName(const std::string& name);

}  // namespace quantd::client::internal

#endif  // QUANTD_CLIENT_CLIENT_INTERNAL_H_
