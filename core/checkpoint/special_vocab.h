// gguf-py's SpecialVocab: merges, special token ids, add_bos/add_eos and the
// chat template, read from tokenizer.json / tokenizer_config.json /
// config.json / merges.txt, and written as GGUF tokenizer metadata in the
// converter's order. Internal to core/checkpoint.
#ifndef QUANTD_CORE_CHECKPOINT_SPECIAL_VOCAB_H_
#define QUANTD_CORE_CHECKPOINT_SPECIAL_VOCAB_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "quantd/core/gguf/gguf_file.h"
#include "tokenizer_json.h"

namespace quantd::core::checkpoint::internal {

struct SpecialVocab {
  std::vector<std::string> merges;
  std::vector<std::pair<std::string, int64_t>> token_ids;  // insertion order
  std::vector<std::pair<std::string, bool>> add_token;     // insertion order
  std::optional<Json> chat_template;                       // string or list
};

// Reads the special vocabulary of the checkpoint in `dir` (merges only when
// `load_merges`); ids at or above `n_vocab` are skipped, as gguf-py does.
absl::StatusOr<SpecialVocab> LoadSpecialVocab(const std::string& dir, const nlohmann::json& config,
                                              bool load_merges, std::optional<int64_t> n_vocab);

// Appends `kv`, refusing a key written twice (gguf-py's writer refuses it too).
absl::Status AddKv(std::vector<gguf::GgufKv>* kvs, gguf::GgufKv kv);

// tokenizer.chat_template (a string), or the named templates of a list.
absl::Status AddChatTemplate(std::vector<gguf::GgufKv>* kvs, const Json& value);

// The special vocabulary's KVs in the converter's order.
absl::Status AddSpecialVocab(std::vector<gguf::GgufKv>* kvs, const SpecialVocab& sv);

}  // namespace quantd::core::checkpoint::internal

#endif  // QUANTD_CORE_CHECKPOINT_SPECIAL_VOCAB_H_
