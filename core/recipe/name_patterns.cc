#include "quantd/core/name_patterns.h"

#include <re2/re2.h>

#include "absl/strings/str_cat.h"

namespace quantd::core {
namespace {

// A pattern as a message quotes it: the first 64 bytes.
std::string Quote(absl::string_view pattern) {
  constexpr size_t kShown = 64;
  if (pattern.size() <= kShown) return absl::StrCat("'", pattern, "'");
  return absl::StrCat("'", pattern.substr(0, kShown), "...' (", pattern.size(), " bytes)");
}

}  // namespace

absl::StatusOr<NamePatterns> NamePatterns::Compile(const std::vector<std::string>& patterns,
                                                   absl::string_view field) {
  if (patterns.size() > kMaxPatterns) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " has ", patterns.size(), " patterns; at most ", kMaxPatterns, " are allowed"));
  }
  NamePatterns out;
  out.patterns_.reserve(patterns.size());
  for (const std::string& p : patterns) {
    if (p.size() > kMaxPatternBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " ", Quote(p), " is longer than ", kMaxPatternBytes, " bytes"));
    }
    RE2::Options options;
    options.set_log_errors(false);
    // Byte-wise, as the std::regex matching it replaces: a non-ASCII literal
    // matches its UTF-8 bytes and `.` matches one byte.
    options.set_encoding(RE2::Options::EncodingLatin1);
    options.set_max_mem(kMaxProgramBytes);
    auto re = std::make_shared<const re2::RE2>(p, options);
    if (!re->ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " ", Quote(p), " is not a valid RE2 regular expression: ",
                       absl::string_view(re->error()).substr(0, 160)));
    }
    out.patterns_.push_back(std::move(re));
  }
  return out;
}

bool NamePatterns::FullMatchAny(absl::string_view name) const {
  const re2::StringPiece text(name.data(), name.size());
  for (const auto& re : patterns_) {
    if (re2::RE2::FullMatch(text, *re)) return true;
  }
  return false;
}

bool NamePatterns::PartialMatchAt(size_t i, absl::string_view name) const {
  return re2::RE2::PartialMatch(re2::StringPiece(name.data(), name.size()), *patterns_[i]);
}

}  // namespace quantd::core
