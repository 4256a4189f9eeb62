// Internal to core/checkpoint: llama.cpp's name for the pre-tokenizer of a
// GPT-2 style byte-level BPE tokenizer (`tokenizer.ggml.pre`).
//
// llama.cpp's converter does not read the pre-tokenizer from tokenizer.json:
// it tokenizes a fixed check text with the Hugging Face tokenizer, takes the
// sha256 of the printed list of token ids, and looks that hash up in a table
// of known models (convert_hf_to_gguf.py get_vocab_base_pre). This file does
// the same: it tokenizes the check text itself, following tokenizer.json
// (added tokens, normalizer, pre-tokenizer regex splits, byte-level mapping,
// BPE merges, post-processor template), hashes the ids the same way and looks
// the hash up in the table. Tokenizer layouts outside what is implemented,
// and hashes not in the table, are refused with InvalidArgument naming the
// reason or the hash.
//
// Thread safety: free functions with no shared state.
#ifndef QUANTD_CORE_CHECKPOINT_BPE_PRE_TOKENIZER_H_
#define QUANTD_CORE_CHECKPOINT_BPE_PRE_TOKENIZER_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace quantd::core::checkpoint {

// The text llama.cpp's converter tokenizes to identify a pre-tokenizer.
absl::string_view BpeCheckText();

// Token ids of `text` as the Hugging Face fast tokenizer described by
// `tokenizer_json` produces them with add_special_tokens=True.
absl::StatusOr<std::vector<int64_t>> BpeEncode(const nlohmann::json& tokenizer_json,
                                               absl::string_view text);

// sha256 (hex) of Python's str() of the id list, e.g. "[1, 2, 3]".
std::string BpeIdsHash(const std::vector<int64_t>& ids);

// The `tokenizer.ggml.pre` value for `tokenizer_json`.
absl::StatusOr<std::string> BpePreTokenizerName(const nlohmann::json& tokenizer_json);

}  // namespace quantd::core::checkpoint

#endif  // QUANTD_CORE_CHECKPOINT_BPE_PRE_TOKENIZER_H_
