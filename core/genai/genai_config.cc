#include "quantd/core/genai/genai_config.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace quantd::core::genai {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// generation_config.json's value for `key` when it has one, else config's.
const json* Pick(const json& config, const json& generation, const char* key) {
  for (const json* source : {&generation, &config}) {
    if (!source->is_object()) continue;
    auto it = source->find(key);
    if (it != source->end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

bool IsTokenId(const json& v) { return v.is_number_integer() && v.get<int64_t>() >= 0; }

}  // namespace

absl::StatusOr<ordered_json> GenaiConfig(const json& config, const json& generation,
                                         const DecoderSpec& spec) {
  const checkpoint::Hparams& h = spec.hparams;
  ordered_json model = ordered_json::object();
  const json* bos = Pick(config, generation, "bos_token_id");
  if (bos != nullptr && !IsTokenId(*bos)) {
    return absl::InvalidArgumentError("bos_token_id is not a token id");
  }
  model["bos_token_id"] = bos != nullptr ? bos->get<int64_t>() : 1;
  model["context_length"] = spec.rope.max_positions;

  ordered_json decoder = ordered_json::object();
  decoder["session_options"] = {{"log_id", "onnxruntime-genai"},
                                {"provider_options", ordered_json::array()}};
  decoder["filename"] = "model.onnx";
  decoder["head_size"] = h.head_dim;
  decoder["hidden_size"] = h.hidden;
  decoder["inputs"] = {{"input_ids", "input_ids"},
                       {"attention_mask", "attention_mask"},
                       {"past_key_names", "past_key_values.%d.key"},
                       {"past_value_names", "past_key_values.%d.value"}};
  decoder["outputs"] = {{"logits", "logits"},
                        {"present_key_names", "present.%d.key"},
                        {"present_value_names", "present.%d.value"}};
  decoder["num_attention_heads"] = h.heads;
  decoder["num_hidden_layers"] = h.layers;
  decoder["num_key_value_heads"] = h.kv_heads;
  model["decoder"] = std::move(decoder);

  const json* eos = Pick(config, generation, "eos_token_id");
  if (eos == nullptr)
    return absl::InvalidArgumentError(
        "config.json and generation_config.json have no eos_token_id; genai_config.json needs one "
        "(the GenAI runtime stops generating there)");
  if (eos->is_array()) {
    if (eos->empty()) return absl::InvalidArgumentError("eos_token_id is an empty list");
    for (const json& e : *eos) {
      if (!IsTokenId(e)) return absl::InvalidArgumentError("eos_token_id holds a non-id");
    }
  } else if (!IsTokenId(*eos)) {
    return absl::InvalidArgumentError("eos_token_id is not a token id");
  }
  model["eos_token_id"] = *eos;
  const json* pad = Pick(config, generation, "pad_token_id");
  if (pad != nullptr && !IsTokenId(*pad)) {
    return absl::InvalidArgumentError("pad_token_id is not a token id");
  }
  model["pad_token_id"] = pad != nullptr ? *pad : (eos->is_array() ? (*eos)[0] : *eos);
  std::string type = spec.arch->hf_class;
  type = absl::AsciiStrToLower(type.substr(0, type.find("For")));
  model["type"] = type;
  model["vocab_size"] = h.vocab;

  ordered_json search = ordered_json::object();
  auto number = [&](const char* key, double fallback) -> double {
    const json* v = Pick(config, generation, key);
    return v != nullptr && v->is_number() ? v->get<double>() : fallback;
  };
  const json* do_sample = Pick(config, generation, "do_sample");
  search["diversity_penalty"] = 0.0;
  search["do_sample"] = do_sample != nullptr && do_sample->is_boolean() && do_sample->get<bool>();
  search["early_stopping"] = true;
  search["length_penalty"] = 1.0;
  search["max_length"] = spec.rope.max_positions;
  search["min_length"] = 0;
  search["no_repeat_ngram_size"] = 0;
  search["num_beams"] = 1;
  search["num_return_sequences"] = 1;
  search["past_present_share_buffer"] = true;
  search["repetition_penalty"] = 1.0;
  search["temperature"] = number("temperature", 1.0);
  const json* top_k = Pick(config, generation, "top_k");
  search["top_k"] = top_k != nullptr && top_k->is_number_integer() ? top_k->get<int64_t>() : 50;
  search["top_p"] = number("top_p", 1.0);

  ordered_json out = ordered_json::object();
  out["model"] = std::move(model);
  out["search"] = std::move(search);
  return out;
}

}  // namespace quantd::core::genai
