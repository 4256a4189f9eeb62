// Quoting a client-supplied string (an id, a file name, a pattern) in a status
// message or a log line without echoing an arbitrarily large value back: a
// multi-megabyte id must not become a multi-megabyte status (gRPC refuses
// metadata that large) or log line. Header-only; pure functions.
#ifndef QUANTD_CORE_BASE_QUOTED_H_
#define QUANTD_CORE_BASE_QUOTED_H_

#include <cstddef>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace quantd::core {

// The longest client string a message shows whole.
inline constexpr size_t kMaxQuotedBytes = 64;

// 'value' when it has at most `max_bytes` bytes, else its first `max_bytes`
// bytes followed by ...' (N bytes).
inline std::string Quoted(absl::string_view value, size_t max_bytes = kMaxQuotedBytes) {
  if (value.size() <= max_bytes) return absl::StrCat("'", value, "'");
  return absl::StrCat("'", value.substr(0, max_bytes), "...' (", value.size(), " bytes)");
}

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_QUOTED_H_
