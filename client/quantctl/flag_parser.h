// FlagParser: the small command-line parser every quantctl command uses.
// Flags take `--name VALUE` or `--name=VALUE`; booleans take no value;
// repeated flags append. Anything not starting with '-' is positional; "--"
// ends the flags.
//
// Thread safety: thread-compatible.
#ifndef QUANTD_CLIENT_QUANTCTL_FLAG_PARSER_H_
#define QUANTD_CLIENT_QUANTCTL_FLAG_PARSER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace quantd::quantctl {

// One command-line word read as a flag: "--name=value" splits at the '=';
// any other word is all name.
struct FlagWord {
  explicit FlagWord(const std::string& arg);
  // Sets `value` to the next word, args[++*i], unless the word carried one.
  // InvalidArgument when there is none.
  absl::Status TakeValue(const std::vector<std::string>& args, size_t* i);

  std::string name;
  std::string value;
  bool has_value = false;
};

class FlagParser {
 public:
  // `names` are alternatives, e.g. {"-o", "--output"}. The pointers must
  // outlive Parse().
  void String(std::vector<std::string> names, std::string* into);
  void Int(std::vector<std::string> names, int* into);
  void Uint(std::vector<std::string> names, uint64_t* into);
  void Bool(std::vector<std::string> names, bool* into);
  void Repeated(std::vector<std::string> names, std::vector<std::string>* into);

  // Parses `args`; positionals go to `positional`. InvalidArgument for an
  // unknown flag, a missing value or a malformed number.
  absl::Status Parse(const std::vector<std::string>& args,
                     std::vector<std::string>* positional) const;

 private:
  enum class Kind { kString, kInt, kUint, kBool, kRepeated };
  struct Spec {
    std::vector<std::string> names;
    Kind kind;
    void* into;
  };
  std::vector<Spec> specs_;
};

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_FLAG_PARSER_H_
