// JSON output for `--json`: API messages in the canonical proto3 JSON mapping
// with the proto's field names (snake_case), every field printed (zero values
// too, so scripts can rely on a key being present), enums as names
// ("JOB_STATE_SUCCEEDED") and 64-bit integers as strings, per the mapping.
//
// Thread safety: pure functions.
#ifndef QUANTD_CLIENT_QUANTCTL_JSON_OUTPUT_H_
#define QUANTD_CLIENT_QUANTCTL_JSON_OUTPUT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace quantd::quantctl {

// One message as a JSON object (single line).
std::string MessageJson(const google::protobuf::Message& message);

// A JSON string literal, escaped.
std::string JsonQuote(absl::string_view s);

// ["a", "b"].
std::string JsonStringArray(const std::vector<std::string>& values);

// Builds one JSON object from already-encoded values, in order.
class JsonObject {
 public:
  JsonObject& Raw(absl::string_view key, absl::string_view json_value);
  JsonObject& Str(absl::string_view key, absl::string_view value);
  JsonObject& Bool(absl::string_view key, bool value);
  JsonObject& Int(absl::string_view key, int64_t value);
  std::string Build() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_JSON_OUTPUT_H_
