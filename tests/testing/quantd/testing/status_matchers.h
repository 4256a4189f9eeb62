// StatusIs(code, substring): matches an absl::Status (or the status of a
// StatusOr via .status()) with that code whose message contains `substring`.
// Abseil 20220623 has no status matchers of its own.
#ifndef QUANTD_TESTING_STATUS_MATCHERS_H_
#define QUANTD_TESTING_STATUS_MATCHERS_H_

#include <string>

#include "gmock/gmock.h"

namespace quantd::testing {

MATCHER_P2(StatusIs, code, substr, "") {
  return arg.code() == code && std::string(arg.message()).find(substr) != std::string::npos;
}

}  // namespace quantd::testing

#endif  // QUANTD_TESTING_STATUS_MATCHERS_H_
