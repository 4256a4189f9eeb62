#include "bpe_pre_tokenizer.h"

#include <unicode/normalizer2.h>
#include <unicode/regex.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quantd/core/base/quoted.h"
#include "quantd/core/base/sha256.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core::checkpoint {
namespace {

using Json = nlohmann::json;

// GPT-2's pre-tokenizer regex, used by a ByteLevel pre-tokenizer with
// use_regex (the Hugging Face tokenizers default).
constexpr char kGpt2Regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// One piece of the text on its way through the tokenizer. Pieces cut out for
// an added token carry its id and are not touched again.
struct Piece {
  std::string text;
  int64_t added_id = -1;
};

const Json* Find(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string TypeOf(const Json& j) {
  const Json* t = Find(j, "type");
  return t && t->is_string() ? t->get<std::string>() : std::string();
}

bool BoolOr(const Json& j, const char* key, bool fallback) {
  const Json* v = Find(j, key);
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}

icu::UnicodeString ToIcu(const std::string& s) {
  return icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
}

std::string ToUtf8(const icu::UnicodeString& u) {
  std::string out;
  u.toUTF8String(out);
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// GPT-2's reversible byte -> printable code point map: bytes 33-126, 161-172
// and 174-255 stand for themselves, the other 68 take code points 256.. in
// byte order.
std::string ByteLevelMap(const std::string& bytes) {
  uint32_t table[256];
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    table[b] = printable ? b : next++;
  }
  std::string out;
  for (unsigned char c : bytes) AppendUtf8(table[c], &out);
  return out;
}

// Limits of one ICU match (see SplitPieces).
constexpr int32_t kMatchStepLimit = 2000;
constexpr int32_t kMatchStackBytes = 8 << 20;

// Splits every not-yet-tokenized piece on `pattern`. Isolated keeps matches
// and the text between them as pieces; Removed keeps only the text between.
absl::Status SplitPieces(const icu::UnicodeString& pattern, uint32_t flags, bool keep_matches,
                         std::vector<Piece>* pieces) {
  UErrorCode status = U_ZERO_ERROR;
  UParseError parse_error;
  std::unique_ptr<icu::RegexPattern> compiled(
      icu::RegexPattern::compile(pattern, flags, parse_error, status));
  if (U_FAILURE(status)) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: pre-tokenizer pattern ",
                                                   core::Quoted(ToUtf8(pattern)),
                                                   " does not compile: ", u_errorName(status)));
  }
  std::vector<Piece> out;
  for (Piece& piece : *pieces) {
    if (piece.added_id >= 0) {
      out.push_back(std::move(piece));
      continue;
    }
    const icu::UnicodeString text = ToIcu(piece.text);
    std::unique_ptr<icu::RegexMatcher> matcher(compiled->matcher(text, status));
    if (U_FAILURE(status)) return absl::InternalError(u_errorName(status));
    // ICU backtracks: bound each match in steps (about a millisecond each)
    // and backtrack memory, so a hostile pattern fails instead of pinning a
    // worker.
    matcher->setTimeLimit(kMatchStepLimit, status);
    matcher->setStackLimit(kMatchStackBytes, status);
    if (U_FAILURE(status)) return absl::InternalError(u_errorName(status));
    int32_t last = 0;
    auto emit = [&](int32_t from, int32_t to) {
      if (to > from) out.push_back(Piece{ToUtf8(icu::UnicodeString(text, from, to - from)), -1});
    };
    while (matcher->find(status) && U_SUCCESS(status)) {
      const int32_t start = matcher->start(status);
      const int32_t end = matcher->end(status);
      if (end == start) continue;  // an empty match splits nothing
      emit(last, start);
      if (keep_matches) emit(start, end);
      last = end;
    }
    if (status == U_REGEX_TIME_OUT || status == U_REGEX_STACK_OVERFLOW) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokenizer.json: pre-tokenizer pattern ", core::Quoted(ToUtf8(pattern)),
                       " is too costly to match (", u_errorName(status), ")"));
    }
    if (U_FAILURE(status)) return absl::InternalError(u_errorName(status));
    emit(last, text.length());
  }
  *pieces = std::move(out);
  return absl::OkStatus();
}

absl::Status Normalize(const Json& normalizer, std::vector<Piece>* pieces) {
  if (normalizer.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(normalizer);
  if (type == "Sequence") {
    const Json* list = Find(normalizer, "normalizers");
    if (list == nullptr || !list->is_array()) {
      return absl::InvalidArgumentError("tokenizer.json: Sequence normalizer without a list");
    }
    for (const Json& n : *list) QUANTD_RETURN_IF_ERROR(Normalize(n, pieces));
    return absl::OkStatus();
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* form = nullptr;
  if (type == "NFC") form = icu::Normalizer2::getNFCInstance(status);
  if (type == "NFD") form = icu::Normalizer2::getNFDInstance(status);
  if (type == "NFKC") form = icu::Normalizer2::getNFKCInstance(status);
  if (type == "NFKD") form = icu::Normalizer2::getNFKDInstance(status);
  if (form == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("tokenizer.json: normalizer \"", type, "\" is not supported"));
  }
  if (U_FAILURE(status)) return absl::InternalError(u_errorName(status));
  for (Piece& piece : *pieces) {
    if (piece.added_id >= 0) continue;
    icu::UnicodeString normalized = form->normalize(ToIcu(piece.text), status);
    if (U_FAILURE(status)) return absl::InternalError(u_errorName(status));
    piece.text = ToUtf8(normalized);
  }
  return absl::OkStatus();
}

absl::Status PreTokenize(const Json& pre, std::vector<Piece>* pieces, bool* byte_level) {
  if (pre.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(pre);
  if (type == "Sequence") {
    const Json* list = Find(pre, "pretokenizers");
    if (list == nullptr || !list->is_array()) {
      return absl::InvalidArgumentError("tokenizer.json: Sequence pre-tokenizer without a list");
    }
    for (const Json& p : *list) QUANTD_RETURN_IF_ERROR(PreTokenize(p, pieces, byte_level));
    return absl::OkStatus();
  }
  if (type == "Split") {
    const Json* pattern = Find(pre, "pattern");
    const Json* behavior = Find(pre, "behavior");
    if (BoolOr(pre, "invert", false)) {
      return absl::UnimplementedError("tokenizer.json: inverted Split pre-tokenizer");
    }
    const std::string how = behavior && behavior->is_string() ? behavior->get<std::string>() : "";
    if (how != "Isolated" && how != "Removed") {
      return absl::UnimplementedError(
          absl::StrCat("tokenizer.json: Split behavior \"", how, "\" is not supported"));
    }
    const Json* regex = pattern ? Find(*pattern, "Regex") : nullptr;
    const Json* literal = pattern ? Find(*pattern, "String") : nullptr;
    if (regex && regex->is_string()) {
      return SplitPieces(ToIcu(regex->get<std::string>()), 0, how == "Isolated", pieces);
    }
    if (literal && literal->is_string()) {
      return SplitPieces(ToIcu(literal->get<std::string>()), UREGEX_LITERAL, how == "Isolated",
                         pieces);
    }
    return absl::InvalidArgumentError("tokenizer.json: Split pre-tokenizer without a pattern");
  }
  if (type == "ByteLevel") {
    if (BoolOr(pre, "add_prefix_space", false)) {
      for (Piece& piece : *pieces) {
        if (piece.added_id < 0 && (piece.text.empty() || piece.text[0] != ' ')) {
          piece.text.insert(piece.text.begin(), ' ');
        }
      }
    }
    if (BoolOr(pre, "use_regex", true)) {
      QUANTD_RETURN_IF_ERROR(SplitPieces(ToIcu(kGpt2Regex), 0, /*keep_matches=*/true, pieces));
    }
    for (Piece& piece : *pieces) {
      if (piece.added_id < 0) piece.text = ByteLevelMap(piece.text);
    }
    *byte_level = true;
    return absl::OkStatus();
  }
  return absl::UnimplementedError(
      absl::StrCat("tokenizer.json: pre-tokenizer \"", type, "\" is not supported"));
}

// Cuts the added tokens out of `text` (leftmost, longest match first).
absl::StatusOr<std::vector<Piece>> SplitAddedTokens(const Json& tokenizer_json,
                                                    const std::string& text) {
  struct Added {
    std::string content;
    int64_t id;
    bool strips;
  };
  std::vector<Added> added;
  if (const Json* list = Find(tokenizer_json, "added_tokens"); list && list->is_array()) {
    for (const Json& a : *list) {
      const Json* content = Find(a, "content");
      const Json* id = Find(a, "id");
      if (!content || !content->is_string() || !id || !id->is_number_integer()) continue;
      if (content->get_ref<const std::string&>().empty()) continue;
      added.push_back({content->get<std::string>(), id->get<int64_t>(),
                       BoolOr(a, "lstrip", false) || BoolOr(a, "rstrip", false) ||
                           BoolOr(a, "single_word", false)});
    }
  }
  std::vector<Piece> pieces;
  std::string pending;
  for (size_t i = 0; i < text.size();) {
    const Added* best = nullptr;
    for (const Added& a : added) {
      if (text.compare(i, a.content.size(), a.content) == 0 &&
          (best == nullptr || a.content.size() > best->content.size())) {
        best = &a;
      }
    }
    if (best == nullptr) {
      pending.push_back(text[i++]);
      continue;
    }
    if (best->strips) {
      return absl::UnimplementedError(absl::StrCat("tokenizer.json: added token ", best->content,
                                                   " with lstrip/rstrip/single_word"));
    }
    if (!pending.empty()) pieces.push_back(Piece{std::move(pending), -1});
    pending.clear();
    pieces.push_back(Piece{best->content, best->id});
    i += best->content.size();
  }
  if (!pending.empty()) pieces.push_back(Piece{std::move(pending), -1});
  return pieces;
}

// The BPE model of tokenizer.json: vocabulary and merge ranks.
class BpeModel {
 public:
  static absl::StatusOr<BpeModel> FromJson(const Json& model) {
    BpeModel m;
    const Json* vocab = Find(model, "vocab");
    const Json* merges = Find(model, "merges");
    if (vocab == nullptr || !vocab->is_object() || merges == nullptr || !merges->is_array()) {
      return absl::InvalidArgumentError("tokenizer.json: BPE model without vocab and merges");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const Json* v = Find(model, key);
      if (v && v->is_string() && !v->get_ref<const std::string&>().empty()) {
        return absl::UnimplementedError(absl::StrCat("tokenizer.json: BPE ", key));
      }
    }
    if (BoolOr(model, "byte_fallback", false)) {
      return absl::UnimplementedError("tokenizer.json: BPE with byte_fallback");
    }
    if (const Json* dropout = Find(model, "dropout");
        dropout && dropout->is_number() && dropout->get<double>() > 0) {
      return absl::UnimplementedError("tokenizer.json: BPE dropout");
    }
    m.ignore_merges_ = BoolOr(model, "ignore_merges", false);
    m.vocab_.reserve(vocab->size());
    for (const auto& [token, id] : vocab->items()) {
      if (id.is_number_integer()) m.vocab_[token] = id.get<int64_t>();
    }
    if (const Json* unk = Find(model, "unk_token"); unk && unk->is_string()) {
      auto it = m.vocab_.find(unk->get<std::string>());
      if (it != m.vocab_.end()) m.unk_id_ = it->second;
    }
    m.fuse_unk_ = BoolOr(model, "fuse_unk", false);
    int64_t rank = 0;
    for (const Json& merge : *merges) {
      std::string left, right;
      if (merge.is_string()) {
        const std::string& s = merge.get_ref<const std::string&>();
        const size_t space = s.find(' ');
        if (space == std::string::npos) {
          return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: merge \"", s, "\""));
        }
        left = s.substr(0, space);
        right = s.substr(space + 1);
      } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
                 merge[1].is_string()) {
        left = merge[0].get<std::string>();
        right = merge[1].get<std::string>();
      } else {
        return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: merge ", merge.dump()));
      }
      m.ranks_.emplace(PairKey(left, right), rank++);
    }
    return m;
  }

  // Appends the ids of one pre-tokenized word.
  absl::Status Encode(const std::string& word, std::vector<int64_t>* ids) const {
    if (ignore_merges_) {
      if (auto it = vocab_.find(word); it != vocab_.end()) {
        ids->push_back(it->second);
        return absl::OkStatus();
      }
    }
    std::vector<std::string> symbols;
    for (size_t i = 0; i < word.size();) {
      size_t len = 1;
      const unsigned char c = static_cast<unsigned char>(word[i]);
      if (c >= 0xF0)
        len = 4;
      else if (c >= 0xE0)
        len = 3;
      else if (c >= 0xC0)
        len = 2;
      symbols.push_back(word.substr(i, len));
      i += len;
    }
    while (symbols.size() > 1) {
      int64_t best_rank = std::numeric_limits<int64_t>::max();
      size_t best = 0;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        auto it = ranks_.find(PairKey(symbols[i], symbols[i + 1]));
        if (it != ranks_.end() && it->second < best_rank) {
          best_rank = it->second;
          best = i;
        }
      }
      if (best_rank == std::numeric_limits<int64_t>::max()) break;
      symbols[best] += symbols[best + 1];
      symbols.erase(symbols.begin() + best + 1);
    }
    bool last_was_unk = false;
    for (const std::string& s : symbols) {
      auto it = vocab_.find(s);
      if (it != vocab_.end()) {
        ids->push_back(it->second);
        last_was_unk = false;
      } else if (unk_id_ >= 0) {
        if (!(fuse_unk_ && last_was_unk)) ids->push_back(unk_id_);
        last_was_unk = true;
      }  // no unk token: the symbol is dropped, as Hugging Face does
    }
    return absl::OkStatus();
  }

 private:
  static std::string PairKey(const std::string& a, const std::string& b) {
    std::string key = a;
    key.push_back('\0');
    key += b;
    return key;
  }

  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<std::string, int64_t> ranks_;
  int64_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
};

absl::Status PostProcess(const Json& post, std::vector<int64_t>* ids) {
  if (post.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(post);
  if (type == "ByteLevel") return absl::OkStatus();  // offsets only
  if (type == "Sequence") {
    const Json* list = Find(post, "processors");
    if (list == nullptr || !list->is_array()) {
      return absl::InvalidArgumentError("tokenizer.json: Sequence post-processor without a list");
    }
    for (const Json& p : *list) QUANTD_RETURN_IF_ERROR(PostProcess(p, ids));
    return absl::OkStatus();
  }
  if (type == "TemplateProcessing") {
    const Json* single = Find(post, "single");
    const Json* special = Find(post, "special_tokens");
    if (single == nullptr || !single->is_array()) {
      return absl::InvalidArgumentError("tokenizer.json: TemplateProcessing without \"single\"");
    }
    std::vector<int64_t> out;
    for (const Json& item : *single) {
      if (Find(item, "Sequence")) {
        out.insert(out.end(), ids->begin(), ids->end());
        continue;
      }
      const Json* token = Find(item, "SpecialToken");
      const Json* name = token ? Find(*token, "id") : nullptr;
      const Json* entry = name && name->is_string() && special
                              ? Find(*special, name->get_ref<const std::string&>().c_str())
                              : nullptr;
      const Json* entry_ids = entry ? Find(*entry, "ids") : nullptr;
      if (entry_ids == nullptr || !entry_ids->is_array()) {
        return absl::InvalidArgumentError(
            absl::StrCat("tokenizer.json: TemplateProcessing item ", item.dump()));
      }
      for (const Json& id : *entry_ids) {
        if (id.is_number_integer()) out.push_back(id.get<int64_t>());
      }
    }
    *ids = std::move(out);
    return absl::OkStatus();
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const Json* cls = Find(post, "cls");
    const Json* sep = Find(post, "sep");
    if (!cls || !sep || !cls->is_array() || !sep->is_array() || cls->size() != 2 ||
        sep->size() != 2 || !(*cls)[1].is_number_integer() || !(*sep)[1].is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: ", type, " without cls/sep"));
    }
    ids->insert(ids->begin(), (*cls)[1].get<int64_t>());
    ids->push_back((*sep)[1].get<int64_t>());
    return absl::OkStatus();
  }
  return absl::UnimplementedError(
      absl::StrCat("tokenizer.json: post-processor \"", type, "\" is not supported"));
}

// llama.cpp's table (convert_hf_to_gguf.py get_vocab_base_pre): hash of the
// check text's ids -> pre-tokenizer name. Where a hash appears twice the later
// entry wins, as in the converter's chain of ifs. The entries from "gpt-4o"
// on were added after b4747.
struct KnownPre {
  const char* hash;
  const char* name;
};
constexpr KnownPre kKnownPres[] = {
    {"0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5", "llama-bpe"},
    {"049ecf7629871e3041641907f3de7c733e4dbfdc736f57d882ba0b0845599754", "deepseek-llm"},
    {"347715f544604f9118bb75ed199f68779f423cabb20db6de6f31b908d04d7821", "deepseek-coder"},
    {"8aeee3860c56296a157a1fe2fad249ec40aa59b1bb5709f4ade11c4e6fe652ed", "falcon"},
    {"9d032fcbd5501f4a38150912590928bfb36091efb5df11b8e2124b0390e3fb1e", "falcon3"},
    {"0876d13b50744004aa9aeae05e7b0647eac9d801b5ba4668afc01e709c15e19f", "bert-bge"},
    {"8e62295832751ca1e8f92f2226f403dea30dc5165e448b5bfa05af5340c64ec7", "bert-bge-large"},
    {"b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166", "mpt"},
    {"35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34", "starcoder"},
    {"3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454", "gpt-2"},
    {"32d85c31273f8019248f2559fed492d929ea28b17e51d81d3bb36fff23ca72b3", "stablelm2"},
    {"6221ad2852e85ce96f791f476e0b390cf9b474c9e3d1362f53a24a06dc8220ff", "refact"},
    {"9c2227e4dd922002fb81bde4fc02b0483ca4f12911410dee2255e4987644e3f8", "command-r"},
    {"e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea", "qwen2"},
    {"b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166", "olmo"},
    {"a8594e3edff7c29c003940395316294b2c623e09894deebbc65f33f1515df79e", "dbrx"},
    {"c7699093ba4255a91e702aa38a596aa81669f3525dae06c2953267dde580f448", "jina-v1-en"},
    {"0876d13b50744004aa9aeae05e7b0647eac9d801b5ba4668afc01e709c15e19f", "jina-v2-en"},
    {"171aeeedd6fb548d418a7461d053f11b6f1f1fc9b387bd66640d28a4b9f5c643", "jina-v2-es"},
    {"27949a2493fc4a9f53f5b9b029c82689cfbe5d3a1929bb25e043089e28466de6", "jina-v2-de"},
    {"c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d", "smaug-bpe"},
    {"c7ea5862a53e4272c035c8238367063e2b270d51faa48c0f09e9d5b54746c360", "poro-chat"},
    {"7967bfa498ade6b757b064f31e964dddbb80f8f9a4d68d4ba7998fcf281c531a", "jina-v2-code"},
    {"b6e8e1518dc4305be2fe39c313ed643381c4da5db34a98f6a04c093f8afbe99b", "chatglm-bpe"},
    {"81d72c7348a9f0ebe86f23298d37debe0a5e71149e29bd283904c02262b27516", "chatglm-bpe"},
    {"7fc505bd3104ca1083b150b17d088b59534ede9bde81f0dd2090967d7fe52cee", "viking"},
    {"b53802fb28e26d645c3a310b34bfe07da813026ec7c7716883404d5e0f8b1901", "jais"},
    {"7b3e7548e4308f52a76e8229e4e6cc831195d0d1df43aed21ac6c93da05fec5f", "codeshell"},
    {"63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e", "tekken"},
    {"855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249", "smollm"},
    {"3c30d3ad1d6b64202cd222813e7736c2db6e1bd6d67197090fc1211fbc612ae7", "bloom"},
    {"bc01ce58980e1db43859146dc51b1758b3b88729b217a74792e9f8d43e479d21", "gpt3-finnish"},
    {"4e2b24cc4770243d65a2c9ec19770a72f08cffc161adbb73fcbb6b7dd45a0aae", "exaone"},
    {"fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085", "phi-2"},
    {"60824e3c0d9401f89943cbb2fff727f0e2d4c545ba4df2d6e4f09a6db0f5b450", "chameleon"},
    {"1431a23e583c97432bc230bff598d103ddb5a1f89960c8f1d1051aaa944d0b35", "minerva-7b"},
    {"8b5a93ed704057481f240da0be7e7dca721d7f8f4755263b6807227a2cbeae65", "roberta-bpe"},
    {"ad851be1dba641f2e3711822f816db2c265f788b37c63b4e1aeacb9ee92de8eb", "gigachat"},
    {"d4c8f286ea6b520b3d495c4455483cfa2302c0cfcd4be05d781b6a8a0a7cdaf1", "megrez"},
    {"877081d19cf6996e2c4ff0e1236341e9b7bde288f5311a56a937f0afbbb3aeb5", "deepseek-v3"},
    {"b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5", "deepseek-r1-qwen"},
    // After b4747: the name later llama.cpp writes (Phi-4-mini is "gpt-4o").
    {"ccc2ef013c104be7bae2965776d611e1d7a8a2a9c547dd93a682c9a9fc80352e", "gpt-4o"},
};

}  // namespace

// The converter's chktxt, as UTF-8 bytes.
constexpr char kCheckText[] =
    "\012 \012\012 \012\012\012 \011 \011\011 \011\012  \012   \012    \012     \012\360"
    "\237\232\200 (normal) \360\237\230\266\342\200\215\360\237\214\253\357\270\217 (m"
    "ultiple emojis concatenated) \342\234\205 \360\237\246\231\360\237\246\231 3 33 3"
    "33 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 \341\236\200\341\236\266\341"
    "\236\223\341\237\213\341\236\217\341\237\202\341\236\226\341\236\267\341\236\237\341"
    "\237\201\341\236\237\341\236\242\341\236\266\341\236\205\360\237\230\201 ?\346\210"
    "\221\346\203\263\345\234\250apple\345\267\245\344\275\2341314151\345\244\251\357\275"
    "\236 ------======= \320\275\320\265\321\211\320\276 \320\275\320\260 \320\221\321"
    "\212\320\273\320\263\320\260\321\200\321\201\320\272\320\270 ''''''```````\042\042"
    "\042\042......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure "
    "I'll make it, 'D you like some tea? We'Ve a'lL";

absl::string_view BpeCheckText() { return absl::string_view(kCheckText, sizeof(kCheckText) - 1); }

absl::StatusOr<std::vector<int64_t>> BpeEncode(const Json& tokenizer_json, absl::string_view text) {
  const Json* model_json = Find(tokenizer_json, "model");
  if (model_json == nullptr || TypeOf(*model_json) != "BPE") {
    return absl::UnimplementedError("tokenizer.json: the model is not BPE");
  }
  QUANTD_ASSIGN_OR_RETURN(BpeModel model, BpeModel::FromJson(*model_json));
  QUANTD_ASSIGN_OR_RETURN(std::vector<Piece> pieces,
                          SplitAddedTokens(tokenizer_json, std::string(text)));
  if (const Json* normalizer = Find(tokenizer_json, "normalizer")) {
    QUANTD_RETURN_IF_ERROR(Normalize(*normalizer, &pieces));
  }
  bool byte_level = false;
  if (const Json* pre = Find(tokenizer_json, "pre_tokenizer")) {
    QUANTD_RETURN_IF_ERROR(PreTokenize(*pre, &pieces, &byte_level));
  }
  if (!byte_level) {
    return absl::UnimplementedError(
        "tokenizer.json: no ByteLevel pre-tokenizer (not a GPT-2 style byte-level BPE)");
  }
  std::vector<int64_t> ids;
  for (const Piece& piece : pieces) {
    if (piece.added_id >= 0) {
      ids.push_back(piece.added_id);
    } else {
      QUANTD_RETURN_IF_ERROR(model.Encode(piece.text, &ids));
    }
  }
  if (const Json* post = Find(tokenizer_json, "post_processor")) {
    QUANTD_RETURN_IF_ERROR(PostProcess(*post, &ids));
  }
  return ids;
}

std::string BpeIdsHash(const std::vector<int64_t>& ids) {
  return Sha256Hex(absl::StrCat("[", absl::StrJoin(ids, ", "), "]"));
}

absl::StatusOr<std::string> BpePreTokenizerName(const Json& tokenizer_json) {
  auto ids = BpeEncode(tokenizer_json, BpeCheckText());
  if (!ids.ok()) {
    return absl::Status(ids.status().code(), absl::StrCat("cannot identify the BPE pre-tokenizer: ",
                                                          ids.status().message()));
  }
  const std::string hash = BpeIdsHash(*ids);
  const char* name = nullptr;
  for (const KnownPre& known : kKnownPres) {
    if (hash == known.hash) name = known.name;
  }
  if (name == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("BPE pre-tokenizer not recognized: the check text's token ids hash to ", hash,
                     ", which is not in llama.cpp's table of known tokenizers"));
  }
  return std::string(name);
}

}  // namespace quantd::core::checkpoint
