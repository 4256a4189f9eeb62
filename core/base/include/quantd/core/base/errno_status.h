// ErrnoToStatus: the one mapping from a POSIX errno to an absl::Status code,
// shared by every module that touches the file system (core writers, the
// server's stores, the client's uploads and downloads).
//
//   ENOSPC, EDQUOT          -> ResourceExhausted (free space, then retry)
//   EMFILE, ENFILE          -> ResourceExhausted (too many open files)
//   EACCES, EPERM, EROFS    -> PermissionDenied
//   ENOENT, ENOTDIR         -> NotFound
//   anything else           -> Internal
//
// Thread safety: thread-safe (strerror_r).
#ifndef QUANTD_CORE_BASE_ERRNO_STATUS_H_
#define QUANTD_CORE_BASE_ERRNO_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace quantd::core {

// The status code for `err` (see the table above).
absl::StatusCode ErrnoToStatusCode(int err);

// A status with ErrnoToStatusCode(err) and the message
// "<what> <path>: <strerror(err)>", e.g. "rename /data/x: No space left on device".
// REQUIRES: err != 0.
absl::Status ErrnoToStatus(int err, absl::string_view what, absl::string_view path);

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_ERRNO_STATUS_H_
