#include "special_vocab.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core::checkpoint::internal {

using gguf::GgufKv;

namespace {

constexpr const char* kSpecialTypes[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};

absl::Status SetSpecialToken(SpecialVocab* sv, std::optional<int64_t> n_vocab,
                             const std::string& type, std::optional<int64_t> id) {
  if (!id) return absl::OkStatus();
  if (*id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid value for special token type ", type, ": ", *id));
  }
  if (n_vocab && *id >= *n_vocab) return absl::OkStatus();  // out of range: skipped
  for (const auto& [t, unused] : sv->token_ids) {
    if (t == type) return absl::OkStatus();  // first source wins
  }
  sv->token_ids.emplace_back(type, *id);
  return absl::OkStatus();
}

// "a b" merges; the list-of-pairs form (transformers >= 4.45) joins each pair
// with a space after encoding spaces inside a part as U+0120.
absl::StatusOr<std::vector<std::string>> MergesFromTokenizerJson(const BigJson& merges) {
  std::vector<std::string> out;
  if (!merges.is_array() || merges.empty()) return out;
  if (merges[0].is_string()) {
    out.reserve(merges.size());
    for (const BigJson& m : merges) {
      if (!m.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("tokenizer.json: merge ", m.dump(), " is not a string"));
      }
      out.push_back(m.get<std::string>());
    }
    return out;
  }
  if (merges[0].is_array() && merges[0].size() == 2 && merges[0][0].is_string()) {
    out.reserve(merges.size());
    for (const BigJson& m : merges) {
      if (!m.is_array() || m.size() != 2 || !m[0].is_string() || !m[1].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("tokenizer.json: merge ", m.dump(), " is not a pair of strings"));
      }
      out.push_back(
          absl::StrCat(absl::StrReplaceAll(m[0].get<std::string>(), {{" ", "\xc4\xa0"}}), " ",
                       absl::StrReplaceAll(m[1].get<std::string>(), {{" ", "\xc4\xa0"}})));
    }
    return out;
  }
  return absl::InvalidArgumentError("tokenizer.json: unknown format of model.merges");
}

absl::StatusOr<std::vector<std::string>> MergesFromMergesTxt(const std::string& path) {
  QUANTD_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  std::vector<std::string> merges;
  std::istringstream in(text);
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    absl::string_view s = absl::StripAsciiWhitespace(line);
    if (first) {
      first = false;
      if (absl::StartsWith(s, "#")) continue;
    }
    if (s.empty()) continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(s, absl::ByAnyChar(" \t\r\n\v\f"), absl::SkipEmpty());
    if (parts.size() != 2) continue;  // malformed entries are ignored
    merges.push_back(absl::StrCat(parts[0], " ", parts[1]));
  }
  return merges;
}

}  // namespace

absl::StatusOr<SpecialVocab> LoadSpecialVocab(const std::string& dir, const nlohmann::json& config,
                                              bool load_merges, std::optional<int64_t> n_vocab) {
  SpecialVocab sv;
  QUANTD_ASSIGN_OR_RETURN(std::optional<BigJson> tokenizer_json,
                          ReadJsonIfPresent<BigJson>(dir, "tokenizer.json"));
  BigJson added_tokens = BigJson::array();
  if (tokenizer_json) {
    if (load_merges) {
      if (const BigJson* model = Find(*tokenizer_json, "model")) {
        if (const BigJson* merges = Find(*model, "merges")) {
          QUANTD_ASSIGN_OR_RETURN(sv.merges, MergesFromTokenizerJson(*merges));
        }
      }
    }
    if (const BigJson* added = Find(*tokenizer_json, "added_tokens"); added && added->is_array()) {
      added_tokens = *added;
    }
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<Json> tokenizer_config,
                          ReadJsonIfPresent(dir, "tokenizer_config.json"));
  if (tokenizer_config) {
    const Json* chat_template = Find(*tokenizer_config, "chat_template");
    if (chat_template && (chat_template->is_string() || chat_template->is_array())) {
      sv.chat_template = *chat_template;
    }
    for (const char* type : kSpecialTypes) {
      const Json* add = Find(*tokenizer_config, absl::StrCat("add_", type, "_token"));
      if (add && add->is_boolean()) sv.add_token.emplace_back(type, add->get<bool>());
      const Json* entry = Find(*tokenizer_config, absl::StrCat(type, "_token"));
      std::string content;
      if (entry && entry->is_string()) {
        content = entry->get<std::string>();
      } else if (entry && entry->is_object()) {
        const Json* c = Find(*entry, "content");
        if (c == nullptr || !c->is_string()) continue;
        content = c->get<std::string>();
      } else {
        continue;
      }
      for (const BigJson& atok : added_tokens) {
        const BigJson* c = Find(atok, "content");
        if (c && c->is_string() && c->get_ref<const std::string&>() == content) {
          QUANTD_RETURN_IF_ERROR(SetSpecialToken(&sv, n_vocab, type, AsInteger(Find(atok, "id"))));
          break;
        }
      }
    }
  }
  for (const char* type : kSpecialTypes) {
    auto it = config.find(absl::StrCat(type, "_token_id"));
    if (it == config.end()) continue;
    QUANTD_RETURN_IF_ERROR(SetSpecialToken(&sv, n_vocab, type, AsInteger(&*it)));
  }
  if (load_merges && sv.merges.empty()) {
    const std::string merges_txt = PathIn(dir, "merges.txt");
    if (IsFile(merges_txt)) {
      QUANTD_ASSIGN_OR_RETURN(sv.merges, MergesFromMergesTxt(merges_txt));
    }
  }
  return sv;
}

absl::Status AddKv(std::vector<GgufKv>* kvs, GgufKv kv) {
  for (const GgufKv& existing : *kvs) {
    if (existing.key == kv.key) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokenizer metadata key ", kv.key, " would be written twice"));
    }
  }
  kvs->push_back(std::move(kv));
  return absl::OkStatus();
}

absl::Status AddChatTemplate(std::vector<GgufKv>* kvs, const Json& value) {
  if (value.is_string()) {
    return AddKv(kvs, GgufKv::String("tokenizer.chat_template", value.get<std::string>()));
  }
  std::optional<std::string> default_template;
  std::vector<std::string> names;  // first-appearance order (Python uses an unordered set)
  for (const Json& choice : value) {
    const Json* name_json = Find(choice, "name");
    const Json* template_json = Find(choice, "template");
    std::string name;
    if (name_json && name_json->is_string()) {
      // Every code point that is not an ASCII letter or digit becomes '_'.
      const std::string& raw = name_json->get_ref<const std::string&>();
      for (size_t i = 0; i < raw.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(raw[i]);
        if (c >= 0x80) {
          while (i + 1 < raw.size() && (static_cast<unsigned char>(raw[i + 1]) & 0xC0) == 0x80) ++i;
          name.push_back('_');
        } else {
          name.push_back(absl::ascii_isalnum(c) ? static_cast<char>(c) : '_');
        }
      }
    }
    if (name.empty() || template_json == nullptr || template_json->is_null()) continue;
    if (!template_json->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokenizer_config.json: chat template \"", name, "\" is not a string"));
    }
    if (name == "default") {
      default_template = template_json->get<std::string>();
    } else {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
      QUANTD_RETURN_IF_ERROR(
          AddKv(kvs, GgufKv::String(absl::StrCat("tokenizer.chat_template.", name),
                                    template_json->get<std::string>())));
    }
  }
  if (!names.empty()) {
    QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::StringArray("tokenizer.chat_templates", names)));
  }
  if (default_template) {
    QUANTD_RETURN_IF_ERROR(
        AddKv(kvs, GgufKv::String("tokenizer.chat_template", *default_template)));
  }
  return absl::OkStatus();
}

absl::Status AddSpecialVocab(std::vector<GgufKv>* kvs, const SpecialVocab& sv) {
  if (!sv.merges.empty()) {
    QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::StringArray("tokenizer.ggml.merges", sv.merges)));
  }
  for (const auto& [type, id] : sv.token_ids) {
    const char* key = nullptr;
    if (type == "bos") key = "tokenizer.ggml.bos_token_id";
    if (type == "eos") key = "tokenizer.ggml.eos_token_id";
    if (type == "unk") key = "tokenizer.ggml.unknown_token_id";
    if (type == "sep") key = "tokenizer.ggml.seperator_token_id";  // sic: llama.cpp's spelling
    if (type == "pad") key = "tokenizer.ggml.padding_token_id";
    if (type == "mask") key = "tokenizer.ggml.mask_token_id";
    if (key == nullptr) continue;  // cls: the b4747 writer has no key for it
    if (id > UINT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(type, " token id ", id, " exceeds uint32"));
    }
    QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::Uint32(key, static_cast<uint32_t>(id))));
  }
  for (const auto& [type, value] : sv.add_token) {
    if (type == "bos")
      QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::Bool("tokenizer.ggml.add_bos_token", value)));
    if (type == "eos")
      QUANTD_RETURN_IF_ERROR(AddKv(kvs, GgufKv::Bool("tokenizer.ggml.add_eos_token", value)));
    // add_<other>_token: the b4747 writer has no key for them.
  }
  if (sv.chat_template) QUANTD_RETURN_IF_ERROR(AddChatTemplate(kvs, *sv.chat_template));
  return absl::OkStatus();
}

}  // namespace quantd::core::checkpoint::internal
