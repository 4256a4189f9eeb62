// NamePatterns: a list of regular expressions that select tensors or nodes
// by name (Recipe.exclude_regex, the MLX exclusion list), compiled with RE2.
//
// RE2 matches in time linear in the name, with bounded memory and no
// recursion, so a pattern from a client cannot pin a worker or overflow its
// stack. Each pattern must match the whole name (RE2::FullMatch), byte by
// byte (Latin-1 mode: `.` is one byte of a UTF-8 name). RE2 syntax
// is the familiar Perl/ECMAScript subset without backreferences and
// lookaround; a pattern RE2 refuses is InvalidArgument at compile time.
//
// Limits (documented in docs/recipes.md): at most kMaxPatterns patterns of at
// most kMaxPatternBytes bytes each, each compiled within kMaxProgramBytes of
// RE2 program memory.
//
// Immutable after Compile(); copies share the compiled programs; safe to use
// from several threads.
#ifndef QUANTD_CORE_NAME_PATTERNS_H_
#define QUANTD_CORE_NAME_PATTERNS_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace quantd::core {

class NamePatterns {
 public:
  static constexpr size_t kMaxPatterns = 256;
  static constexpr size_t kMaxPatternBytes = 4096;
  static constexpr int64_t kMaxProgramBytes = 1 << 20;

  // Matches nothing.
  NamePatterns() = default;

  // Compiles `patterns`. Errors: InvalidArgument naming `field` (as the
  // message should call the list, e.g. "exclude_regex") when there are too
  // many patterns, one is too long, or RE2 refuses one (syntax, nesting,
  // program size). Messages quote at most the first 64 bytes of a pattern.
  static absl::StatusOr<NamePatterns> Compile(const std::vector<std::string>& patterns,
                                              absl::string_view field);

  // Whether some pattern matches the whole of `name`.
  bool FullMatchAny(absl::string_view name) const;

  // Whether pattern `i` (in Compile order) matches some part of `name`
  // (RE2::PartialMatch, as std::regex_search). REQUIRES: i < size().
  bool PartialMatchAt(size_t i, absl::string_view name) const;

  bool empty() const { return patterns_.empty(); }
  size_t size() const { return patterns_.size(); }

 private:
  std::vector<std::shared_ptr<const re2::RE2>> patterns_;
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_NAME_PATTERNS_H_
