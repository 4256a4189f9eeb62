#include "tokenizer_json.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "quantd/core/base/read_file.h"

namespace quantd::core::checkpoint::internal {

std::string PathIn(const std::string& dir, absl::string_view name) {
  return (std::filesystem::path(dir) / std::string(name)).string();
}

bool IsFile(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  return ReadFileUpTo(path, kMaxTokenizerFileBytes, "a tokenizer file");
}

// llama.cpp's does_token_look_special: added tokens that ought to be control
// tokens although they are not marked special.
bool LooksSpecial(absl::string_view t) {
  if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
  if (absl::StartsWith(t, "<|") && absl::EndsWith(t, "|>")) return true;
  if (absl::StartsWith(t, "<\xef\xbd\x9c") && absl::EndsWith(t, "\xef\xbd\x9c>")) return true;
  return absl::StartsWith(t, "<unused") && absl::EndsWith(t, ">");
}

// config.json's vocab_size, or `fallback` when absent.
absl::StatusOr<int64_t> ConfigVocabSize(const nlohmann::json& config, int64_t fallback) {
  auto it = config.find("vocab_size");
  if (it == config.end()) return fallback;
  if (!it->is_number_integer() || it->template get<int64_t>() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: vocab_size must be a positive integer, got ", it->dump()));
  }
  return it->template get<int64_t>();
}

absl::Status TooManyTokens(absl::string_view what, int64_t count_or_id, int64_t vocab_size) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " ", count_or_id, " does not fit config.json vocab_size ", vocab_size));
}

// Token id of an added-token entry: `id_text` from a JSON key or value.
absl::StatusOr<int64_t> TokenIdFromKey(const std::string& file, const std::string& key) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(key, &id) || id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": added token key \"", key, "\" is not a token id"));
  }
  return id;
}

}  // namespace quantd::core::checkpoint::internal
