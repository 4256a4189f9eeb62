// Internal to core/checkpoint (and its tests): the GPT-2 style BPE branch of
// TokenizerGgufKvs with the `tokenizer.ggml.pre` name given by the caller
// instead of identified from the tokenizer, so that the rest of that branch
// can be tested on small tokenizers that are not in llama.cpp's table.
//
// Thread safety: a free function; reads files, keeps no state.
#ifndef QUANTD_CORE_CHECKPOINT_TOKENIZER_GGUF_INTERNAL_H_
#define QUANTD_CORE_CHECKPOINT_TOKENIZER_GGUF_INTERNAL_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "quantd/core/gguf/gguf_file.h"

namespace quantd::core::checkpoint::internal {

absl::StatusOr<std::vector<gguf::GgufKv>> Gpt2TokenizerGgufKvs(const std::string& checkpoint_dir,
                                                               const nlohmann::json& config,
                                                               const std::string& pre_name);

}  // namespace quantd::core::checkpoint::internal

#endif  // QUANTD_CORE_CHECKPOINT_TOKENIZER_GGUF_INTERNAL_H_
