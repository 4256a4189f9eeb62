// genai_config.json for an exported decoder: the file ONNX Runtime GenAI
// reads next to model.onnx. Its parser rejects unknown keys, so exactly the
// fields the model builder writes for a CPU decoder are written, in its
// order (json indent 4), from config.json with generation_config.json
// overriding bos/eos/pad token ids and the sampling defaults:
//
//   model: bos_token_id, context_length, decoder {session_options {log_id,
//          provider_options: []}, filename, head_size, hidden_size, inputs,
//          outputs, num_attention_heads, num_hidden_layers,
//          num_key_value_heads}, eos_token_id, pad_token_id, type, vocab_size
//   search: diversity_penalty, do_sample, early_stopping, length_penalty,
//          max_length, min_length, no_repeat_ngram_size, num_beams,
//          num_return_sequences, past_present_share_buffer, repetition_penalty,
//          temperature, top_k, top_p
//
// No decoder.sliding_window object: the decoder keeps a plain KV cache
// (decoder_graph.h says why), so the runtime must not allocate a windowed one.
//
// Thread safety: pure function.
#ifndef QUANTD_CORE_GENAI_GENAI_CONFIG_H_
#define QUANTD_CORE_GENAI_GENAI_CONFIG_H_

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "quantd/core/genai/decoder_graph.h"

namespace quantd::core::genai {

absl::StatusOr<nlohmann::ordered_json> GenaiConfig(const nlohmann::json& config,
                                                   const nlohmann::json& generation_config,
                                                   const DecoderSpec& spec);

}  // namespace quantd::core::genai

#endif  // QUANTD_CORE_GENAI_GENAI_CONFIG_H_
