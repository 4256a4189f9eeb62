// Reading tokenizer files for the GGUF tokenizer metadata: bounded
// whole-file reads, JSON parsing that names the byte where it fails, and the
// Python-like JSON predicates the converter's rules are written in.
// Internal to core/checkpoint. Thread safety: free functions, no state.
#ifndef QUANTD_CORE_CHECKPOINT_TOKENIZER_JSON_H_
#define QUANTD_CORE_CHECKPOINT_TOKENIZER_JSON_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "quantd/core/base/status_macros.h"

namespace quantd::core::checkpoint::internal {

// Small files whose key order matters (added_tokens.json, tokenizer_config.json)
// keep it, as Python's json does; tokenizer.json (objects of 100k+ keys, whose
// order does not matter) uses the sorted, logarithmic-lookup kind.
using Json = nlohmann::ordered_json;
using BigJson = nlohmann::json;

// Tokenizer files are at most tens of MB (a 200k-token tokenizer.json is
// ~15 MB); anything far larger is not a tokenizer.
constexpr uint64_t kMaxTokenizerFileBytes = 512ull << 20;

constexpr char kSentencePieceSpace[] = "\xe2\x96\x81";  // U+2581, SentencePiece's space

std::string PathIn(const std::string& dir, absl::string_view name);

bool IsFile(const std::string& path);

absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// Parses `dir/name`; nullopt when the file does not exist.
template <class J = Json>
absl::StatusOr<std::optional<J>> ReadJsonIfPresent(const std::string& dir, absl::string_view name) {
  const std::string path = PathIn(dir, name);
  if (!IsFile(path)) return std::optional<J>();
  QUANTD_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  try {
    return std::optional<J>(J::parse(text));
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": malformed JSON at byte ", e.byte, ": ", e.what()));
  }
}

// Python truthiness of a JSON value (`if x:`).
template <class J>
bool Truthy(const J* v) {
  if (v == nullptr || v->is_null()) return false;
  if (v->is_boolean()) return v->template get<bool>();
  if (v->is_number_integer()) return v->template get<int64_t>() != 0;
  if (v->is_number_unsigned()) return v->template get<uint64_t>() != 0;
  if (v->is_number_float()) return v->template get<double>() != 0.0;
  if (v->is_string()) return !v->template get_ref<const std::string&>().empty();
  return !v->empty();  // array / object
}

template <class J>
const J* Find(const J& object, absl::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(std::string(key));
  return it == object.end() ? nullptr : &*it;
}

// An integer JSON value (Python `isinstance(x, int)`, booleans excluded).
template <class J>
std::optional<int64_t> AsInteger(const J* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_number_integer()) return v->template get<int64_t>();
  if (v->is_number_unsigned()) {
    const uint64_t u = v->template get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  return std::nullopt;
}

// llama.cpp's does_token_look_special: added tokens that ought to be control
// tokens although they are not marked special.
bool LooksSpecial(absl::string_view t);

// config.json's vocab_size, or `fallback` when absent.
absl::StatusOr<int64_t> ConfigVocabSize(const nlohmann::json& config, int64_t fallback);

absl::Status TooManyTokens(absl::string_view what, int64_t count_or_id, int64_t vocab_size);

// Token id of an added-token entry: `id_text` from a JSON key or value.
absl::StatusOr<int64_t> TokenIdFromKey(const std::string& file, const std::string& key);

template <class J>
absl::StatusOr<std::string> ContentOf(const std::string& file, const J& entry) {
  const J* content = Find(entry, "content");
  if (content == nullptr || !content->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": added token ", entry.dump(), " has no string \"content\""));
  }
  return content->template get<std::string>();
}

}  // namespace quantd::core::checkpoint::internal

#endif  // QUANTD_CORE_CHECKPOINT_TOKENIZER_JSON_H_
