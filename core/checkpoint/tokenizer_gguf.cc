#include "quantd/core/checkpoint/tokenizer_gguf.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "bpe_pre_tokenizer.h"
#include "quantd/core/base/status_macros.h"
#include "sentencepiece_pieces.h"
#include "special_vocab.h"
#include "tokenizer_gguf_internal.h"
#include "tokenizer_json.h"

namespace quantd::core::checkpoint {
namespace {

using gguf::GgufKv;
using internal::AddKv;
using internal::AddSpecialVocab;
using internal::AsInteger;
using internal::BigJson;
using internal::ConfigVocabSize;
using internal::ContentOf;
using internal::Find;
using internal::IsFile;
using internal::Json;
using internal::kSentencePieceSpace;
using internal::kTokenControl;
using internal::kTokenNormal;
using internal::kTokenUnused;
using internal::kTokenUserDefined;
using internal::LoadSpecialVocab;
using internal::LooksSpecial;
using internal::PathIn;
using internal::ReadJsonIfPresent;
using internal::ReadWholeFile;
using internal::SpecialVocab;
using internal::TokenIdFromKey;
using internal::TooManyTokens;
using internal::Truthy;
// ---------------------------------------------------------------------------
// SentencePiece vocabularies.

struct ScoredVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
};

// The SentencePiece pieces over a vocabulary of config's vocab_size
// (`[PAD<id>]`, score -10000, UNUSED beyond the model's pieces).
absl::StatusOr<ScoredVocab> SentencePieceBase(const std::string& dir,
                                              const nlohmann::json& config) {
  const std::string path = PathIn(dir, "tokenizer.model");
  QUANTD_ASSIGN_OR_RETURN(const std::string bytes, ReadWholeFile(path));
  QUANTD_ASSIGN_OR_RETURN(internal::SentencePiecePieces sp,
                          internal::ParseSentencePieceModel(path, bytes));
  const int64_t n_pieces = static_cast<int64_t>(sp.pieces.size());
  QUANTD_ASSIGN_OR_RETURN(const int64_t vocab_size, ConfigVocabSize(config, n_pieces));
  if (n_pieces > vocab_size) {
    return TooManyTokens("tokenizer.model has", n_pieces, vocab_size);
  }
  ScoredVocab v;
  v.tokens.reserve(vocab_size);
  for (int64_t i = 0; i < vocab_size; ++i) v.tokens.push_back(absl::StrCat("[PAD", i, "]"));
  v.scores.assign(vocab_size, -10000.0f);
  v.types.assign(vocab_size, kTokenUnused);
  for (int64_t i = 0; i < n_pieces; ++i) {
    v.tokens[i] = std::move(sp.pieces[i]);
    v.scores[i] = sp.scores[i];
    v.types[i] = sp.types[i];
  }
  return v;
}

// added_tokens.json: {"content": id}; ids outside the vocabulary are skipped.
absl::Status ApplyAddedTokensJson(const std::string& dir, ScoredVocab* v) {
  QUANTD_ASSIGN_OR_RETURN(std::optional<Json> added, ReadJsonIfPresent(dir, "added_tokens.json"));
  if (!added) return absl::OkStatus();
  if (!added->is_object()) {
    return absl::InvalidArgumentError("added_tokens.json: expected an object of token -> id");
  }
  const int64_t vocab_size = static_cast<int64_t>(v->tokens.size());
  for (const auto& [content, id_json] : added->items()) {
    std::optional<int64_t> id = AsInteger(&id_json);
    if (!id || *id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("added_tokens.json: id of \"", content, "\" is not a token id"));
    }
    if (*id >= vocab_size) continue;  // the converter ignores it with a warning
    v->tokens[*id] = content;
    v->scores[*id] = -1000.0f;
    v->types[*id] = kTokenUserDefined;
  }
  return absl::OkStatus();
}

// Overrides one added token. `phi3_style`: Phi3MiniModel's rule (USER_DEFINED
// unless marked special); otherwise the generic rule (CONTROL also when the
// text looks special; user-defined text gets U+2581 turned into spaces).
absl::Status OverrideToken(const std::string& file, int64_t id, std::string content, bool special,
                           bool phi3_style, ScoredVocab* v) {
  const int64_t vocab_size = static_cast<int64_t>(v->tokens.size());
  if (id >= vocab_size)
    return TooManyTokens(absl::StrCat(file, ": added token id"), id, vocab_size);
  int32_t type = kTokenUserDefined;
  if (phi3_style) {
    if (special) type = kTokenControl;
  } else if (special || LooksSpecial(content)) {
    type = kTokenControl;
  } else {
    content = absl::StrReplaceAll(content, {{kSentencePieceSpace, " "}});
  }
  v->tokens[id] = std::move(content);
  v->scores[id] = -1000.0f;
  v->types[id] = type;
  return absl::OkStatus();
}

// tokenizer_config.json's added_tokens_decoder: {"id": {"content", "special"}}.
absl::Status ApplyAddedTokensDecoder(const std::optional<Json>& tokenizer_config, bool phi3_style,
                                     ScoredVocab* v) {
  if (!tokenizer_config) return absl::OkStatus();
  const Json* decoder = Find(*tokenizer_config, "added_tokens_decoder");
  if (decoder == nullptr) return absl::OkStatus();
  if (!decoder->is_object()) {
    return absl::InvalidArgumentError(
        "tokenizer_config.json: added_tokens_decoder is not an object");
  }
  for (const auto& [key, entry] : decoder->items()) {
    QUANTD_ASSIGN_OR_RETURN(const int64_t id, TokenIdFromKey("tokenizer_config.json", key));
    QUANTD_ASSIGN_OR_RETURN(std::string content, ContentOf("tokenizer_config.json", entry));
    QUANTD_RETURN_IF_ERROR(OverrideToken("tokenizer_config.json", id, std::move(content),
                                         Truthy(Find(entry, "special")), phi3_style, v));
  }
  return absl::OkStatus();
}

absl::Status AddScoredVocab(std::vector<GgufKv>* kvs, const ScoredVocab& v) {
  QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::String("tokenizer.ggml.model", "llama")));
  QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::String("tokenizer.ggml.pre", "default")));
  QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::StringArray("tokenizer.ggml.tokens", v.tokens)));
  QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::Float32Array("tokenizer.ggml.scores", v.scores)));
  return AddKv(kvs, GgufKv::Int32Array("tokenizer.ggml.token_type", v.types));
}

// Model._set_vocab_sentencepiece (Llama, Mistral, Qwen2 with tokenizer.model).
absl::Status SentencePieceVocab(const std::string& dir, const nlohmann::json& config,
                                std::vector<GgufKv>* kvs) {
  QUANTD_ASSIGN_OR_RETURN(ScoredVocab v, SentencePieceBase(dir, config));
  QUANTD_RETURN_IF_ERROR(ApplyAddedTokensJson(dir, &v));
  QUANTD_ASSIGN_OR_RETURN(std::optional<Json> tokenizer_config,
                          ReadJsonIfPresent(dir, "tokenizer_config.json"));
  QUANTD_RETURN_IF_ERROR(ApplyAddedTokensDecoder(tokenizer_config, /*phi3_style=*/false, &v));
  QUANTD_RETURN_IF_ERROR(AddScoredVocab(kvs, v));
  QUANTD_ASSIGN_OR_RETURN(SpecialVocab sv, LoadSpecialVocab(dir, config, /*load_merges=*/false,
                                                            static_cast<int64_t>(v.tokens.size())));
  return AddSpecialVocab(kvs, sv);
}

// Phi3MiniModel.set_vocab's SentencePiece branch: added_tokens.json, then
// tokenizer_config.json's added_tokens_decoder, then tokenizer.json's
// added_tokens, each overriding the ids it names.
absl::Status Phi3SentencePieceVocab(const std::string& dir, const nlohmann::json& config,
                                    const std::optional<Json>& tokenizer_config,
                                    std::vector<GgufKv>* kvs) {
  QUANTD_ASSIGN_OR_RETURN(ScoredVocab v, SentencePieceBase(dir, config));
  QUANTD_RETURN_IF_ERROR(ApplyAddedTokensJson(dir, &v));
  QUANTD_RETURN_IF_ERROR(ApplyAddedTokensDecoder(tokenizer_config, /*phi3_style=*/true, &v));
  QUANTD_ASSIGN_OR_RETURN(std::optional<BigJson> tokenizer_json,
                          ReadJsonIfPresent<BigJson>(dir, "tokenizer.json"));
  if (tokenizer_json) {
    if (const BigJson* added = Find(*tokenizer_json, "added_tokens")) {
      if (!added->is_array()) {
        return absl::InvalidArgumentError("tokenizer.json: added_tokens is not a list");
      }
      for (const BigJson& entry : *added) {
        std::optional<int64_t> id = AsInteger(Find(entry, "id"));
        if (!id || *id < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("tokenizer.json: added token ", entry.dump(), " has no valid \"id\""));
        }
        QUANTD_ASSIGN_OR_RETURN(std::string content, ContentOf("tokenizer.json", entry));
        QUANTD_RETURN_IF_ERROR(OverrideToken("tokenizer.json", *id, std::move(content),
                                             Truthy(Find(entry, "special")), /*phi3_style=*/true,
                                             &v));
      }
    }
  }
  QUANTD_RETURN_IF_ERROR(AddScoredVocab(kvs, v));
  QUANTD_ASSIGN_OR_RETURN(SpecialVocab sv, LoadSpecialVocab(dir, config, /*load_merges=*/false,
                                                            static_cast<int64_t>(v.tokens.size())));
  return AddSpecialVocab(kvs, sv);
}

// ---------------------------------------------------------------------------
// GPT-2 byte-level BPE (Model._set_vocab_gpt2 / get_vocab_base).

// `pre_name`: the tokenizer.ggml.pre value to write; nullptr identifies it
// from the tokenizer (BpePreTokenizerName).
absl::Status Gpt2Vocab(const std::string& dir, const nlohmann::json& config,
                       std::vector<GgufKv>* kvs, const std::string* pre_name = nullptr) {
  QUANTD_ASSIGN_OR_RETURN(std::optional<BigJson> tokenizer_json,
                          ReadJsonIfPresent<BigJson>(dir, "tokenizer.json"));
  if (!tokenizer_json) {
    return absl::NotFoundError(absl::StrCat(
        dir, ": no tokenizer.json (a GPT-2 style BPE tokenizer needs it; tokenizer.model absent)"));
  }
  const BigJson* model = Find(*tokenizer_json, "model");
  const BigJson* type = model ? Find(*model, "type") : nullptr;
  if (type == nullptr || !type->is_string() || type->get<std::string>() != "BPE") {
    return absl::UnimplementedError(
        "tokenizer.json: only BPE tokenizer models are supported without a tokenizer.model");
  }
  const BigJson* vocab = Find(*model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    return absl::InvalidArgumentError("tokenizer.json: model.vocab is not an object");
  }
  // The vocabulary as transformers' get_vocab() sees it: the model's tokens,
  // then the added tokens (which win on a clash).
  std::vector<std::pair<std::string, int64_t>> entries;
  entries.reserve(vocab->size());
  for (const auto& [token, id_json] : vocab->items()) {
    std::optional<int64_t> id = AsInteger(&id_json);
    if (!id || *id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokenizer.json: id of token \"", token, "\" is not a token id"));
    }
    entries.emplace_back(token, *id);
  }
  // Added tokens: content -> special flag, by id.
  std::map<int64_t, std::pair<std::string, bool>> added_by_id;
  if (const BigJson* added = Find(*tokenizer_json, "added_tokens"); added && added->is_array()) {
    for (const BigJson& entry : *added) {
      std::optional<int64_t> id = AsInteger(Find(entry, "id"));
      if (!id || *id < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("tokenizer.json: added token ", entry.dump(), " has no valid \"id\""));
      }
      QUANTD_ASSIGN_OR_RETURN(std::string content, ContentOf("tokenizer.json", entry));
      added_by_id[*id] = {content, Truthy(Find(entry, "special"))};
    }
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<Json> tokenizer_config,
                          ReadJsonIfPresent(dir, "tokenizer_config.json"));
  if (tokenizer_config) {
    if (const Json* decoder = Find(*tokenizer_config, "added_tokens_decoder");
        decoder && decoder->is_object()) {
      for (const auto& [key, entry] : decoder->items()) {
        QUANTD_ASSIGN_OR_RETURN(const int64_t id, TokenIdFromKey("tokenizer_config.json", key));
        QUANTD_ASSIGN_OR_RETURN(std::string content, ContentOf("tokenizer_config.json", entry));
        added_by_id[id] = {content, Truthy(Find(entry, "special"))};
      }
    }
  }
  // transformers' get_vocab(): content -> id, an added token's id replacing
  // the model's id for the same content.
  std::unordered_map<std::string, int64_t> content_ids;
  content_ids.reserve(entries.size() + added_by_id.size());
  for (auto& [token, id] : entries) content_ids[token] = id;
  std::set<std::string> added_contents;
  for (const auto& [id, added] : added_by_id) {
    content_ids[added.first] = id;
    added_contents.insert(added.first);
  }
  std::map<int64_t, std::string> by_id;
  for (const auto& [token, id] : content_ids) by_id[id] = token;
  for (const auto& [id, added] : added_by_id) by_id[id] = added.first;
  const int64_t n_tokens = static_cast<int64_t>(content_ids.size());
  QUANTD_ASSIGN_OR_RETURN(const int64_t vocab_size, ConfigVocabSize(config, n_tokens));
  if (!by_id.empty() && by_id.rbegin()->first >= vocab_size) {
    return TooManyTokens("tokenizer.json: token id", by_id.rbegin()->first, vocab_size);
  }

  std::string pre;
  if (pre_name != nullptr) {
    pre = *pre_name;
  } else {
    QUANTD_ASSIGN_OR_RETURN(pre, BpePreTokenizerName(*tokenizer_json));
  }

  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  tokens.reserve(vocab_size);
  types.reserve(vocab_size);
  for (int64_t i = 0; i < vocab_size; ++i) {
    auto it = by_id.find(i);
    if (it == by_id.end()) {
      tokens.push_back(absl::StrCat("[PAD", i, "]"));
      types.push_back(kTokenUnused);
      continue;
    }
    std::string token = it->second;
    int32_t type = kTokenNormal;
    if (added_contents.count(token) != 0) {
      auto added = added_by_id.find(i);
      const bool special = added != added_by_id.end() && added->second.second;
      if (special || LooksSpecial(token)) {
        type = kTokenControl;
      } else {
        token = absl::StrReplaceAll(token, {{kSentencePieceSpace, " "}});
        type = kTokenUserDefined;
      }
    }
    tokens.push_back(std::move(token));
    types.push_back(type);
  }
  QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::String("tokenizer.ggml.model", "gpt2")));
  QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::String("tokenizer.ggml.pre", pre)));
  QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::StringArray("tokenizer.ggml.tokens", tokens)));
  QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::Int32Array("tokenizer.ggml.token_type", types)));
  QUANTD_ASSIGN_OR_RETURN(SpecialVocab sv,
                          LoadSpecialVocab(dir, config, /*load_merges=*/true, std::nullopt));
  return AddSpecialVocab(kvs, sv);
}

// ---------------------------------------------------------------------------
// Per-architecture set_vocab.

absl::Status Phi3Vocab(const std::string& dir, const nlohmann::json& config,
                       std::vector<GgufKv>* kvs) {
  QUANTD_ASSIGN_OR_RETURN(std::optional<Json> tokenizer_config,
                          ReadJsonIfPresent(dir, "tokenizer_config.json"));
  if (tokenizer_config) {
    const Json* cls = Find(*tokenizer_config, "tokenizer_class");
    if (cls == nullptr) {
      return absl::InvalidArgumentError(
          "tokenizer_config.json: no \"tokenizer_class\" (the Phi-3 converter requires it)");
    }
    if (cls->is_string() && cls->get<std::string>() == "GPT2Tokenizer") {
      return Gpt2Vocab(dir, config, kvs);
    }
  }
  if (!IsFile(PathIn(dir, "tokenizer.model"))) {
    return absl::NotFoundError(absl::StrCat(dir, ": no tokenizer.model"));
  }
  return Phi3SentencePieceVocab(dir, config, tokenizer_config, kvs);
}

absl::Status LlamaVocab(const std::string& dir, const nlohmann::json& config,
                        std::vector<GgufKv>* kvs) {
  auto vocab_size_it = config.find("vocab_size");
  const int64_t config_vocab = vocab_size_it != config.end() && vocab_size_it->is_number_integer()
                                   ? vocab_size_it->get<int64_t>()
                                   : 32000;
  if (config_vocab == 32016) {
    return absl::UnimplementedError("vocab_size 32016 (CodeLlama infill tokens) is not supported");
  }
  if (IsFile(PathIn(dir, "tokenizer.model"))) {
    QUANTD_RETURN_IF_ERROR(SentencePieceVocab(dir, config, kvs));
  } else {
    // Without tokenizer.model the converter tries a Llama-style BPE
    // tokenizer.json with byte fallback, then GPT-2 style BPE (Llama 3).
    QUANTD_ASSIGN_OR_RETURN(std::optional<BigJson> tokenizer_json,
                            ReadJsonIfPresent<BigJson>(dir, "tokenizer.json"));
    if (!tokenizer_json) {
      return absl::NotFoundError(absl::StrCat(dir, ": no tokenizer.model and no tokenizer.json"));
    }
    const BigJson* model = Find(*tokenizer_json, "model");
    const BigJson* type = model ? Find(*model, "type") : nullptr;
    const bool bpe = type && type->is_string() && type->get<std::string>() == "BPE";
    const BigJson* byte_fallback_json = model ? Find(*model, "byte_fallback") : nullptr;
    const BigJson* ignore_merges = model ? Find(*model, "ignore_merges") : nullptr;
    const bool byte_fallback = byte_fallback_json == nullptr || Truthy(byte_fallback_json);
    const bool is_llama3 = bpe && Truthy(ignore_merges) && !byte_fallback;
    const BigJson* decoder = Find(*tokenizer_json, "decoder");
    const BigJson* decoder_type = decoder ? Find(*decoder, "type") : nullptr;
    const bool llama_hf = !is_llama3 && bpe && byte_fallback_json && Truthy(byte_fallback_json) &&
                          decoder_type && decoder_type->is_string() &&
                          decoder_type->get<std::string>() == "Sequence";
    if (llama_hf) {
      return absl::UnimplementedError(
          "tokenizer.json is a SentencePiece-style BPE with byte fallback and there is no "
          "tokenizer.model; add the model's tokenizer.model");
    }
    QUANTD_RETURN_IF_ERROR(Gpt2Vocab(dir, config, kvs));
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<Json> tokenizer_config,
                          ReadJsonIfPresent(dir, "tokenizer_config.json"));
  if (tokenizer_config) {
    if (const Json* prefix = Find(*tokenizer_config, "add_prefix_space")) {
      QUANTD_RETURN_IF_ERROR(
          AddKv(kvs, GgufKv::Bool("tokenizer.ggml.add_space_prefix", Truthy(prefix))));
    }
  }
  if (config_vocab == 49152) {  // Granite small models: no BOS
    QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::Bool("tokenizer.ggml.add_bos_token", false)));
  }
  return absl::OkStatus();
}

absl::Status Qwen2Vocab(const std::string& dir, const nlohmann::json& config,
                        std::vector<GgufKv>* kvs) {
  if (IsFile(PathIn(dir, "tokenizer.model"))) return SentencePieceVocab(dir, config, kvs);
  return Gpt2Vocab(dir, config, kvs);
}

}  // namespace

namespace internal {

absl::StatusOr<std::vector<gguf::GgufKv>> Gpt2TokenizerGgufKvs(const std::string& checkpoint_dir,
                                                               const nlohmann::json& config,
                                                               const std::string& pre_name) {
  std::vector<GgufKv> kvs;
  QUANTD_RETURN_IF_ERROR(Gpt2Vocab(checkpoint_dir, config, &kvs, &pre_name));
  return kvs;
}

}  // namespace internal

absl::StatusOr<std::vector<gguf::GgufKv>> TokenizerGgufKvs(const std::string& checkpoint_dir,
                                                           const nlohmann::json& config,
                                                           absl::string_view architecture) {
  if (!config.is_object()) {
    return absl::InvalidArgumentError("config.json: expected a JSON object");
  }
  std::vector<GgufKv> kvs;
  if (architecture == "Phi3ForCausalLM") {
    QUANTD_RETURN_IF_ERROR(Phi3Vocab(checkpoint_dir, config, &kvs));
  } else if (architecture == "LlamaForCausalLM" || architecture == "MistralForCausalLM") {
    QUANTD_RETURN_IF_ERROR(LlamaVocab(checkpoint_dir, config, &kvs));
  } else if (architecture == "Qwen2ForCausalLM") {
    QUANTD_RETURN_IF_ERROR(Qwen2Vocab(checkpoint_dir, config, &kvs));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("architecture ", architecture,
                     " has no tokenizer conversion; supported: Phi3ForCausalLM, LlamaForCausalLM, "
                     "MistralForCausalLM, Qwen2ForCausalLM"));
  }
  return kvs;
}

}  // namespace quantd::core::checkpoint
