// quantctl's exit codes: the contract shell scripts and CI steps rely on.
// Documented in `quantctl --help` and docs/quantctl.md; chosen in one place
// (ExitCodeFor) from the status of whatever failed.
//
// Thread safety: pure functions.
#ifndef QUANTD_CLIENT_QUANTCTL_EXIT_CODES_H_
#define QUANTD_CLIENT_QUANTCTL_EXIT_CODES_H_

#include "absl/status/status.h"

namespace quantd::quantctl {

enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,          // anything else (server INTERNAL, queue full, ...)
  kExitUsage = 2,          // bad flags or arguments, bad recipe, unknown job/model
  kExitJobFailed = 3,      // the job ended FAILED or CANCELLED
  kExitUnavailable = 4,    // server unreachable, draining or timed out
  kExitAuth = 5,           // missing/wrong token, TLS handshake refused
  kExitData = 6,           // digest mismatch, corrupt/unreadable file, local write failure
  kExitInterrupted = 130,  // Ctrl-C (after cancelling the job unless --detach)
};

// Statuses carrying this payload URL are job outcomes (FAILED/CANCELLED)
// rather than RPC failures.
inline constexpr char kJobOutcomePayload[] = "quantd.dev/quantctl/job-outcome";

// Marks `status` as a job outcome (exit code 3).
absl::Status JobOutcome(absl::Status status);

// The exit code for a failed operation.
//   UNAVAILABLE, DEADLINE_EXCEEDED          -> 4
//   UNAUTHENTICATED, PERMISSION_DENIED      -> 5
//   DATA_LOSS                               -> 6
//   INVALID_ARGUMENT, NOT_FOUND, OUT_OF_RANGE, ALREADY_EXISTS -> 2
//   job outcome (JobOutcome())              -> 3
//   CANCELLED (local Ctrl-C)                -> 130
//   anything else                           -> 1
int ExitCodeFor(const absl::Status& status);

// The exit-code table for --help texts.
const char* ExitCodesHelp();

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_EXIT_CODES_H_
