#include "flag_parser.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace quantd::quantctl {

void FlagParser::String(std::vector<std::string> names, std::string* into) {
  specs_.push_back({std::move(names), Kind::kString, into});
}
void FlagParser::Int(std::vector<std::string> names, int* into) {
  specs_.push_back({std::move(names), Kind::kInt, into});
}
void FlagParser::Uint(std::vector<std::string> names, uint64_t* into) {
  specs_.push_back({std::move(names), Kind::kUint, into});
}
void FlagParser::Bool(std::vector<std::string> names, bool* into) {
  specs_.push_back({std::move(names), Kind::kBool, into});
}
void FlagParser::Repeated(std::vector<std::string> names, std::vector<std::string>* into) {
  specs_.push_back({std::move(names), Kind::kRepeated, into});
}

FlagWord::FlagWord(const std::string& arg) : name(arg) {
  if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
    name = arg.substr(0, eq);
    value = arg.substr(eq + 1);
    has_value = true;
  }
}

absl::Status FlagWord::TakeValue(const std::vector<std::string>& args, size_t* i) {
  if (has_value) return absl::OkStatus();
  if (*i + 1 >= args.size()) {
    return absl::InvalidArgumentError(absl::StrCat(name, " needs a value"));
  }
  value = args[++*i];
  return absl::OkStatus();
}

absl::Status FlagParser::Parse(const std::vector<std::string>& args,
                               std::vector<std::string>* positional) const {
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (flags_done || a.empty() || a[0] != '-' || a == "-") {
      positional->push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    FlagWord word(a);
    const std::string& name = word.name;
    const Spec* spec = nullptr;
    for (const Spec& s : specs_) {
      for (const auto& n : s.names) {
        if (n == name) spec = &s;
      }
    }
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", name, " (see --help)"));
    }
    if (spec->kind == Kind::kBool) {
      if (word.has_value) {
        return absl::InvalidArgumentError(absl::StrCat(name, " takes no value"));
      }
      *static_cast<bool*>(spec->into) = true;
      continue;
    }
    if (auto st = word.TakeValue(args, &i); !st.ok()) return st;
    const std::string& value = word.value;
    switch (spec->kind) {
      case Kind::kString:
        *static_cast<std::string*>(spec->into) = value;
        break;
      case Kind::kRepeated:
        static_cast<std::vector<std::string>*>(spec->into)->push_back(value);
        break;
      case Kind::kInt:
        if (!absl::SimpleAtoi(value, static_cast<int*>(spec->into))) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": '", value, "' is not an integer"));
        }
        break;
      case Kind::kUint:
        if (!absl::SimpleAtoi(value, static_cast<uint64_t*>(spec->into))) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": '", value, "' is not a non-negative integer"));
        }
        break;
      case Kind::kBool:
        break;
    }
  }
  return absl::OkStatus();
}

}  // namespace quantd::quantctl
