#include "client_internal.h"

#include <openssl/rand.h>

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "quantd/client/client.h"
#include "quantd/core/base/errno_status.h"

namespace quantd::client::internal {

absl::Status LocalFileError(absl::Status status) {
  if (!status.ok()) status.SetPayload(kLocalFileErrorPayload, absl::Cord(""));
  return status;
}

absl::Status LocalErrnoError(int err, absl::string_view what, absl::string_view path) {
  return LocalFileError(core::ErrnoToStatus(err, what, path));
}

bool Retryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kAborted ||
         code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kFailedPrecondition ||  // upload incomplete
         code == absl::StatusCode::kInternal || code == absl::StatusCode::kCancelled ||
         code == absl::StatusCode::kUnknown;
}

absl::Status Interrupted() { return absl::CancelledError("interrupted (CancelInFlight)"); }

std::string RandomId() {
  unsigned char raw[16];
  RAND_bytes(raw, sizeof(raw));
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(raw), sizeof(raw)));
}

bool PlainName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace quantd::client::internal
