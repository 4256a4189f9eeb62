#include "quantd/core/base/errno_status.h"

#include <cerrno>
#include <cstring>
#include <type_traits>

#include "absl/strings/str_cat.h"

namespace quantd::core {

absl::StatusCode ErrnoToStatusCode(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EMFILE:  // this process's open-file limit
    case ENFILE:  // the system's
      return absl::StatusCode::kResourceExhausted;
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::StatusCode::kPermissionDenied;
    case ENOENT:
    case ENOTDIR:
      return absl::StatusCode::kNotFound;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status ErrnoToStatus(int err, absl::string_view what, absl::string_view path) {
  char buf[256];
  // GNU strerror_r returns the message (maybe not in buf); XSI returns 0.
  const char* text = buf;
  auto r = ::strerror_r(err, buf, sizeof(buf));
  if constexpr (std::is_same_v<decltype(r), char*>) {
    text = r;
  } else if (r != 0) {
    text = "unknown error";
  }
  return absl::Status(ErrnoToStatusCode(err), absl::StrCat(what, " ", path, ": ", text));
}

}  // namespace quantd::core
