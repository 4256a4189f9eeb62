// Tokenizer metadata of a Hugging Face checkpoint folder, as GGUF key/values.
//
// TokenizerGgufKvs reads the tokenizer files of a checkpoint folder
// (`tokenizer.model`, `tokenizer.json`, `tokenizer_config.json`,
// `added_tokens.json`, plus the already-parsed `config.json`) and returns the
// `tokenizer.*` metadata that llama.cpp's `convert_hf_to_gguf.py` (tag b4747)
// writes for the architecture, with the same keys, value types, values and
// order, so a writer can append them verbatim:
//
//   SentencePiece (Phi3ForCausalLM with a non-GPT2 tokenizer class,
//   LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM with a
//   `tokenizer.model`):
//     tokenizer.ggml.model = "llama", tokenizer.ggml.pre = "default",
//     tokenizer.ggml.tokens, tokenizer.ggml.scores, tokenizer.ggml.token_type,
//     then the special-vocabulary keys (below); Llama/Mistral add
//     tokenizer.ggml.add_space_prefix when tokenizer_config.json has
//     `add_prefix_space`.
//   GPT-2 byte-level BPE (`tokenizer.json`; Phi-3 family with tokenizer_class
//   GPT2Tokenizer such as Phi-4 / Phi-4-mini, Qwen2, Llama 3):
//     tokenizer.ggml.model = "gpt2", tokenizer.ggml.pre = <name>,
//     tokenizer.ggml.tokens, tokenizer.ggml.token_type,
//     tokenizer.ggml.merges, then the special-vocabulary keys.
//   Special vocabulary (gguf-py SpecialVocab): token ids in the order they
//     are found — from tokenizer_config.json's `<type>_token` looked up in
//     tokenizer.json's added tokens, then config.json's `<type>_token_id`,
//     types tried in the order bos, eos, unk, sep, pad, (cls: no key), mask —
//     as tokenizer.ggml.{bos,eos,unknown,seperator,padding,mask}_token_id
//     (uint32); then tokenizer.ggml.add_bos_token / add_eos_token (bool) from
//     tokenizer_config.json; then tokenizer.chat_template (string).
//
// The vocabulary is padded to config.json's `vocab_size` with `[PAD<id>]`
// tokens of type UNUSED. A tokenizer with more tokens (or a token id at or
// above `vocab_size`) is refused with InvalidArgument naming both numbers.
//
// The BPE `tokenizer.ggml.pre` name is what llama.cpp identifies by hashing
// the token ids of a fixed text; see bpe_pre_tokenizer.h for how it is
// derived here and which tokenizers are recognised (others are refused with
// InvalidArgument naming the hash).
//
// Errors: NotFound when no usable tokenizer file exists; InvalidArgument for
// malformed JSON (file and byte offset), unexpected JSON shapes, vocabulary
// size mismatches, unsupported architectures; Unimplemented for tokenizer
// layouts the converter handles through code paths not reproduced here.
//
// Thread safety: a free function; reads files, keeps no state.
#ifndef QUANTD_CORE_CHECKPOINT_TOKENIZER_GGUF_H_
#define QUANTD_CORE_CHECKPOINT_TOKENIZER_GGUF_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "quantd/core/gguf/gguf_file.h"

namespace quantd::core::checkpoint {

// `checkpoint_dir`: the folder; `config`: its parsed config.json;
// `architecture`: config.json's `architectures[0]` (Phi3ForCausalLM,
// LlamaForCausalLM, MistralForCausalLM or Qwen2ForCausalLM).
absl::StatusOr<std::vector<gguf::GgufKv>> TokenizerGgufKvs(const std::string& checkpoint_dir,
                                                           const nlohmann::json& config,
                                                           absl::string_view architecture);

}  // namespace quantd::core::checkpoint

#endif  // QUANTD_CORE_CHECKPOINT_TOKENIZER_GGUF_H_
