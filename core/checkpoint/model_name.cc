#include "quantd/core/checkpoint/model_name.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "quantd/core/name_patterns.h"

namespace quantd::core::checkpoint {
namespace {

bool IsCased(char c) { return absl::ascii_isalpha(static_cast<unsigned char>(c)); }

// Python str.islower(): at least one cased character and no upper-case one.
bool PyIsLower(absl::string_view s) {
  bool cased = false;
  for (char c : s) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) return false;
    if (IsCased(c)) cased = true;
  }
  return cased;
}

// Python str.title(): a cased character is upper-cased after an uncased one
// and lower-cased after a cased one.
std::string PyTitle(absl::string_view s) {
  std::string out(s);
  bool prev_cased = false;
  for (char& c : out) {
    if (IsCased(c)) {
      c = prev_cased ? absl::ascii_tolower(static_cast<unsigned char>(c))
                     : absl::ascii_toupper(static_cast<unsigned char>(c));
      prev_cased = true;
    } else {
      prev_cased = false;
    }
  }
  return out;
}

bool IsDecimal(char c) { return c >= '0' && c <= '9'; }

// Whether `pattern` (a constant of this file) matches all of `s`, ignoring
// case.
bool FullMatch(const std::string& s, const char* pattern) {
  absl::StatusOr<NamePatterns> re =
      NamePatterns::Compile({absl::StrCat("(?i)", pattern)}, "model name pattern");
  return re.ok() && re->FullMatchAny(s);
}

std::string NormalizeSizeLabel(std::string label) {
  for (char& c : label) {
    if (c == '_') c = '.';
  }
  // bloom-7b1 notation
  if (label.size() >= 2 && IsDecimal(label.back())) {
    label = label.substr(0, label.size() - 2) + "." + label.back() + label[label.size() - 2];
  }
  if (label.size() > 1 && IsDecimal(label[label.size() - 2])) {
    const char last = label.back();
    if (last == 'k' || last == 'm' || last == 'b' || last == 't') {
      label.back() = absl::ascii_toupper(static_cast<unsigned char>(last));
    }
  }
  return label;
}

// float(label[:-1]) * 1000 ** " KMBT".find(label[-1]); nullopt where Python's
// float() raises.
std::optional<double> SizeLabelParams(const std::string& label) {
  const std::string number = label.substr(0, label.size() - 1);
  if (number.empty()) return std::nullopt;
  for (char c : number) {
    if (!IsDecimal(c) && c != '.') return std::nullopt;
  }
  if (number.find('.') != number.rfind('.')) return std::nullopt;
  if (number == ".") return std::nullopt;
  const double value = std::strtod(number.c_str(), nullptr);
  static constexpr absl::string_view kScale = " KMBT";
  const size_t pos = kScale.find(label.back());
  const double exponent = pos == absl::string_view::npos ? -1.0 : static_cast<double>(pos);
  return value * std::pow(1000.0, exponent);
}

}  // namespace

std::string IdToTitle(absl::string_view id) {
  std::string s(absl::StripAsciiWhitespace(id));
  for (char& c : s) {
    if (c == '-') c = ' ';
  }
  std::vector<std::string> words;
  for (absl::string_view w : absl::StrSplit(s, absl::ByAnyChar(" \t\n\r\f\v"), absl::SkipEmpty())) {
    std::string word(w);
    const bool keep = !PyIsLower(word) || FullMatch(word, R"((v\d+(?:\.\d+)*|\d.*))");
    words.push_back(keep ? word : PyTitle(word));
  }
  return absl::StrJoin(words, " ");
}

std::string SizeLabel(int64_t total_params) {
  const double count = static_cast<double>(total_params);
  double scaled;
  const char* suffix;
  if (count > 1e12) {
    scaled = count * 1e-12;
    suffix = "T";
  } else if (count > 1e9) {
    scaled = count * 1e-9;
    suffix = "B";
  } else if (count > 1e6) {
    scaled = count * 1e-6;
    suffix = "M";
  } else {
    scaled = count * 1e-3;
    suffix = "K";
  }
  // Python round(): half to even.
  const double rounded = std::nearbyint(scaled);
  std::string digits = std::to_string(static_cast<long long>(rounded));
  const size_t nz = digits.find_first_not_of('0');
  digits = nz == std::string::npos ? "" : digits.substr(nz);
  const int fix = std::max(2 - static_cast<int>(digits.size()), 0);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f%s", fix, scaled, suffix);
  return buf;
}

ModelIdComponents ModelIdToComponents(absl::string_view model_id, int64_t total_params) {
  ModelIdComponents out;
  if (model_id.find(' ') != absl::string_view::npos) {
    out.full_name = std::string(model_id);
    return out;
  }
  std::string full;
  if (size_t slash = model_id.find('/'); slash != absl::string_view::npos) {
    std::string org(model_id.substr(0, slash));
    full = std::string(model_id.substr(slash + 1));
    if (!org.empty() && org[0] != '.') out.organization = org;
  } else {
    full = std::string(model_id);
  }
  out.full_name = full;

  std::vector<std::string> parts;
  for (absl::string_view p : absl::StrSplit(full, '-', absl::SkipEmpty())) parts.emplace_back(p);
  std::vector<std::set<std::string>> types(parts.size());

  for (size_t i = 0; i < parts.size(); ++i) {
    std::string part = parts[i];
    if (FullMatch(part, R"((v|iter)?\d+([.]\d+)*)")) {
      types[i].insert("version");
    } else if (FullMatch(part, R"(i?q\d(_\w)*|b?fp?(16|32))")) {
      types[i].insert("type");
      parts[i] = absl::AsciiStrToUpper(part);
    } else if (i > 0 &&
               FullMatch(
                   part,
                   R"((([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl))")) {
      part = NormalizeSizeLabel(part);
      if (total_params != 0) {
        if (std::optional<double> label_params = SizeLabelParams(part)) {
          const double total = static_cast<double>(total_params);
          const int64_t abs_total = total_params < 0 ? -total_params : total_params;
          const bool far =
              (total_params < 0 && *label_params < static_cast<double>(abs_total / 8)) ||
              (total_params > 0 &&
               std::fabs(*label_params - total) > static_cast<double>(7 * total_params / 8));
          if (far) {
            types[i].insert("finetune");  // likely a context length
            part.back() = absl::ascii_tolower(static_cast<unsigned char>(part.back()));
          }
        }
      }
      if (types[i].empty()) types[i].insert("size_label");
      parts[i] = part;
    } else if (i > 0 && FullMatch(part, "chat|instruct|vision|lora")) {
      if (total_params < 0 && absl::AsciiStrToLower(part) == "lora") {
        types[i].insert("type");
      } else {
        types[i].insert("finetune");
      }
    }
  }

  // Word size labels give way to numeric ones.
  bool numeric_size = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!types[i].count("size_label")) continue;
    for (char c : parts[i]) numeric_size |= IsDecimal(c);
  }
  if (numeric_size) {
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!types[i].count("size_label")) continue;
      bool all_alpha = !parts[i].empty();
      for (char c : parts[i]) all_alpha &= IsCased(c);
      if (all_alpha) types[i].erase("size_label");
    }
  }

  bool at_start = true;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto& t = types[i];
    if (at_start && ((t.empty() && IsCased(parts[i][0])) || t.count("version"))) {
      t.insert("basename");
    } else {
      at_start = false;
      if (t.empty()) t.insert("finetune");
    }
  }
  for (size_t k = parts.size(); k-- > 0;) {
    auto& t = types[k];
    if (t.count("basename") && t.size() > 1) {
      t.erase("basename");
    } else {
      break;
    }
  }

  auto join = [&](auto pred) -> std::optional<std::string> {
    std::vector<std::string> picked;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (pred(types[i])) {
        if (std::find(picked.begin(), picked.end(), parts[i]) == picked.end() || !pred.dedup) {
          picked.push_back(parts[i]);
        }
      }
    }
    if (picked.empty()) return std::nullopt;
    return absl::StrJoin(picked, "-");
  };
  struct Has {
    const char* tag;
    const char* without = nullptr;
    bool dedup = false;
    bool operator()(const std::set<std::string>& t) const {
      return t.count(tag) && (without == nullptr || !t.count(without));
    }
  };
  out.basename = join(Has{"basename"});
  out.size_label = join(Has{"size_label", nullptr, true});
  out.finetune = join(Has{"finetune"});
  out.version = join(Has{"version", "basename"});
  if (!out.size_label && !out.finetune && !out.version) out.basename.reset();
  return out;
}

GeneralNaming DeriveGeneralNaming(const std::optional<std::string>& name_or_path,
                                  absl::string_view folder_name, int64_t total_params) {
  GeneralNaming g;
  std::optional<std::string> name;
  auto apply = [&](const ModelIdComponents& c) {
    if (!name && c.full_name) name = IdToTitle(*c.full_name);
    if (!g.organization && c.organization) g.organization = IdToTitle(*c.organization);
    if (!g.basename && c.basename) g.basename = c.basename;
    if (!g.finetune && c.finetune) g.finetune = c.finetune;
    if (!g.version && c.version) g.version = c.version;
    if (!g.size_label && c.size_label) g.size_label = c.size_label;
  };
  // config.json's _name_or_path, when it looks like a model id, not a path.
  if (name_or_path && std::count(name_or_path->begin(), name_or_path->end(), '/') <= 1) {
    apply(ModelIdToComponents(*name_or_path, total_params));
  }
  apply(ModelIdToComponents(folder_name, total_params));
  g.name = name ? *name : std::string(folder_name);
  if (!g.size_label && total_params > 0) g.size_label = SizeLabel(total_params);
  return g;
}

}  // namespace quantd::core::checkpoint
