// JsonWriter: a minimal streaming JSON emitter (objects, arrays, scalars) for
// reports and logs. Produces compact or two-space-indented UTF-8 JSON.
//
//   JsonWriter w;
//   w.BeginObject(); w.Key("n"); w.Int(3); w.EndObject();
//   std::string s = w.str();
//
// Not thread-safe. Callers are responsible for well-formed nesting.
#ifndef QUANTD_CORE_BASE_JSON_WRITER_H_
#define QUANTD_CORE_BASE_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace quantd::core {

class JsonWriter {
 public:
  explicit JsonWriter(bool pretty = false) : pretty_(pretty) {}

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }
  void Key(absl::string_view key);
  void String(absl::string_view v);
  void Int(int64_t v);
  void Uint(uint64_t v);
  void Double(double v);  // NaN/inf become null
  void Bool(bool v);
  void Null();

  // Key + value shorthands.
  void Field(absl::string_view k, absl::string_view v) {
    Key(k);
    String(v);
  }
  void Field(absl::string_view k, const char* v) {
    Key(k);
    String(v);
  }
  void Field(absl::string_view k, const std::string& v) {
    Key(k);
    String(v);
  }
  void Field(absl::string_view k, int64_t v) {
    Key(k);
    Int(v);
  }
  void Field(absl::string_view k, int v) {
    Key(k);
    Int(v);
  }
  void Field(absl::string_view k, uint64_t v) {
    Key(k);
    Uint(v);
  }
  void Field(absl::string_view k, double v) {
    Key(k);
    Double(v);
  }
  void Field(absl::string_view k, bool v) {
    Key(k);
    Bool(v);
  }

  const std::string& str() const { return out_; }

  static std::string Escape(absl::string_view s);

 private:
  void Open(char c);
  void Close(char c);
  void BeforeValue();
  void Newline();

  const bool pretty_;
  std::string out_;
  std::vector<bool> first_;  // per nesting level: no element written yet
  bool after_key_ = false;
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_JSON_WRITER_H_
