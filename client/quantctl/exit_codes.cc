#include "exit_codes.h"

#include "absl/strings/cord.h"

namespace quantd::quantctl {

absl::Status JobOutcome(absl::Status status) {
  if (status.ok()) return status;
  status.SetPayload(kJobOutcomePayload, absl::Cord("1"));
  return status;
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (status.GetPayload(kJobOutcomePayload).has_value()) return kExitJobFailed;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kExitAuth;
    case absl::StatusCode::kDataLoss:
      return kExitData;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
      return kExitUsage;
    case absl::StatusCode::kCancelled:
      return kExitInterrupted;
    default:
      break;
  }
  return kExitError;
}

const char* ExitCodesHelp() {
  return "Exit codes:\n"
         "  0    success\n"
         "  1    other error (server INTERNAL, queue full, ...)\n"
         "  2    usage error: bad flags or arguments, bad recipe, unknown job or model\n"
         "  3    the job failed or was cancelled\n"
         "  4    server unavailable (unreachable, draining, timed out, TLS handshake failed)\n"
         "  5    authentication failed (missing or wrong token, permission denied)\n"
         "  6    data or integrity error (digest mismatch, corrupt or unreadable file,\n"
         "       cannot write the output)\n"
         "  130  interrupted by Ctrl-C\n";
}

}  // namespace quantd::quantctl
