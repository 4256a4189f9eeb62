#include "json_output.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "quantd/core/base/json_writer.h"

namespace quantd::quantctl {

std::string MessageJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  auto st = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!st.ok()) return "null";
  return out;
}

std::string JsonQuote(absl::string_view s) { return core::JsonWriter::Escape(s); }

std::string JsonStringArray(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ",";
    out += JsonQuote(values[i]);
  }
  return out + "]";
}

JsonObject& JsonObject::Raw(absl::string_view key, absl::string_view json_value) {
  if (!body_.empty()) body_ += ",";
  absl::StrAppend(&body_, JsonQuote(key), ":", json_value);
  return *this;
}

JsonObject& JsonObject::Str(absl::string_view key, absl::string_view value) {
  return Raw(key, JsonQuote(value));
}

JsonObject& JsonObject::Bool(absl::string_view key, bool value) {
  return Raw(key, value ? "true" : "false");
}

JsonObject& JsonObject::Int(absl::string_view key, int64_t value) {
  return Raw(key, absl::StrCat(value));
}

}  // namespace quantd::quantctl
