#include "quantd/core/layer_index.h"

#include <array>

#include "absl/strings/str_cat.h"

namespace quantd::core {
namespace {

bool IsSeparator(char c) { return c == '.' || c == '/' || c == '_' || c == ':'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

constexpr std::array<absl::string_view, 5> kLayerWords = {"layers", "layer", "blocks", "block",
                                                          "h"};

}  // namespace

std::optional<int> LayerIndex(absl::string_view name) {
  const size_t n = name.size();
  for (size_t start = 0; start < n; ++start) {
    if (start > 0 && !IsSeparator(name[start - 1])) continue;
    for (absl::string_view word : kLayerWords) {
      const size_t end = start + word.size();  // the separator after the word
      if (end + 1 >= n || name.substr(start, word.size()) != word || !IsSeparator(name[end])) {
        continue;
      }
      size_t p = end + 1;
      int64_t value = 0;
      while (p < n && IsDigit(name[p]) && value < 1000000) value = value * 10 + (name[p++] - '0');
      if (p == end + 1 || value >= 1000000) continue;
      if (p < n && !IsSeparator(name[p])) continue;
      return static_cast<int>(value);
    }
  }
  return std::nullopt;
}

absl::StatusOr<Int8Selection> Int8Selection::Create(const Recipe& recipe, int num_layers) {
  Int8Selection s;
  s.first_ = recipe.int8_first_layers;
  s.last_ = recipe.int8_last_layers;
  s.num_layers_ = num_layers;
  auto re = NamePatterns::Compile(recipe.int8_regex, "int8_regex");
  if (!re.ok()) return re.status();
  s.regex_ = *std::move(re);
  return s;
}

bool Int8Selection::empty() const { return first_ == 0 && last_ == 0 && regex_.empty(); }

bool Int8Selection::Selects(absl::string_view node_name, std::optional<int> layer) const {
  return !Reason(node_name, layer).empty();
}

std::string Int8Selection::Reason(absl::string_view node_name, std::optional<int> layer) const {
  if (layer.has_value()) {
    if (*layer < first_) return absl::StrCat("first ", first_, " layers");
    if (*layer >= num_layers_ - last_ && last_ > 0) return absl::StrCat("last ", last_, " layers");
  }
  if (!regex_.empty() && regex_.FullMatchAny(node_name)) return "int8_regex";
  return "";
}

}  // namespace quantd::core
