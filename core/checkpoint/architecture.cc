#include "quantd/core/checkpoint/architecture.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core::checkpoint {
namespace {

using nlohmann::json;

std::vector<TensorRule> GlobalTensors() {
  return {
      {"model.embed_tokens.weight", "token_embd.weight", {Dim::kVocab, Dim::kHidden}},
      {"model.norm.weight", "output_norm.weight", {Dim::kHidden}},
      {"lm_head.weight",
       "output.weight",
       {Dim::kVocab, Dim::kHidden},
       Permute::kNone,
       /*optional=*/true},
  };
}

// Norms, attention output and down projection: common to every row.
std::vector<TensorRule> CommonLayerTensors() {
  return {
      {"model.layers.{}.input_layernorm.weight", "blk.{}.attn_norm.weight", {Dim::kHidden}},
      {"model.layers.{}.post_attention_layernorm.weight", "blk.{}.ffn_norm.weight", {Dim::kHidden}},
      {"model.layers.{}.self_attn.o_proj.weight",
       "blk.{}.attn_output.weight",
       {Dim::kHidden, Dim::kQ}},
      {"model.layers.{}.mlp.down_proj.weight", "blk.{}.ffn_down.weight", {Dim::kHidden, Dim::kFfn}},
  };
}

std::vector<TensorRule> Concat(std::vector<TensorRule> a, const std::vector<TensorRule>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<TensorRule> SeparateProjections(Permute q, Permute k) {
  return {
      {"model.layers.{}.self_attn.q_proj.weight",
       "blk.{}.attn_q.weight",
       {Dim::kQ, Dim::kHidden},
       q},
      {"model.layers.{}.self_attn.k_proj.weight",
       "blk.{}.attn_k.weight",
       {Dim::kKv, Dim::kHidden},
       k},
      {"model.layers.{}.self_attn.v_proj.weight", "blk.{}.attn_v.weight", {Dim::kKv, Dim::kHidden}},
      {"model.layers.{}.mlp.gate_proj.weight", "blk.{}.ffn_gate.weight", {Dim::kFfn, Dim::kHidden}},
      {"model.layers.{}.mlp.up_proj.weight", "blk.{}.ffn_up.weight", {Dim::kFfn, Dim::kHidden}},
  };
}

// Metadata keys every llama.cpp Model writes (convert_hf_to_gguf.py
// Model.set_gguf_parameters), in order.
std::vector<KvRule> BaseKvs() {
  return {
      {"block_count", KvSource::kBlockCount},
      {"context_length", KvSource::kContextLength},
      {"embedding_length", KvSource::kEmbeddingLength},
      {"feed_forward_length", KvSource::kFeedForwardLength},
      {"attention.head_count", KvSource::kHeadCount},
      {"attention.head_count_kv", KvSource::kHeadCountKv},
      {"rope.freq_base", KvSource::kRopeFreqBase},
      {"attention.layer_norm_rms_epsilon", KvSource::kRmsEps},
      {"attention.layer_norm_epsilon", KvSource::kLayerNormEps},
      {"attention.key_length", KvSource::kKeyValueLength},
      {"general.file_type", KvSource::kFileType},
  };
}

std::vector<KvRule> Append(std::vector<KvRule> a, std::vector<KvRule> b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<Architecture> BuildTable() {
  const std::vector<KvRule> phi3_kvs = {
      {"context_length", KvSource::kContextLengthRequired},
      {"rope.scaling.original_context_length", KvSource::kOriginalContextLength},
      {"embedding_length", KvSource::kEmbeddingLength},
      {"feed_forward_length", KvSource::kFeedForwardLength},
      {"block_count", KvSource::kBlockCount},
      {"attention.head_count", KvSource::kHeadCount},
      {"attention.head_count_kv", KvSource::kHeadCountKvRequired},
      {"attention.layer_norm_rms_epsilon", KvSource::kRmsEpsRequired},
      {"rope.dimension_count", KvSource::kRopeDimsPartial},
      {"rope.freq_base", KvSource::kRopeFreqBaseRequired},
      {"general.file_type", KvSource::kFileType},
      {"attention.sliding_window", KvSource::kSlidingWindowOrZero},
  };
  const std::vector<KvRule> llama_kvs =
      Append(BaseKvs(), {{"vocab_size", KvSource::kVocabSize},
                         {"rope.dimension_count", KvSource::kRopeDimsHeadDim},
                         {"rope.scaling", KvSource::kRopeScalingLinear}});
  const std::vector<KvRule> qwen2_kvs =
      Append(BaseKvs(), {{"rope.scaling", KvSource::kRopeScalingYarn}});

  const std::vector<TensorRule> phi3_layers =
      Concat(CommonLayerTensors(), {
                                       {"model.layers.{}.self_attn.qkv_proj.weight",
                                        "blk.{}.attn_qkv.weight",
                                        {Dim::kQkv, Dim::kHidden}},
                                       {"model.layers.{}.mlp.gate_up_proj.weight",
                                        "blk.{}.ffn_up.weight",
                                        {Dim::kFfn2, Dim::kHidden}},
                                   });
  const std::vector<TensorRule> llama_layers =
      Concat(CommonLayerTensors(), SeparateProjections(Permute::kHeads, Permute::kKvHeads));
  const std::vector<TensorRule> qwen2_layers =
      Concat(Concat(CommonLayerTensors(), SeparateProjections(Permute::kNone, Permute::kNone)),
             {
                 {"model.layers.{}.self_attn.q_proj.bias", "blk.{}.attn_q.bias", {Dim::kQ}},
                 {"model.layers.{}.self_attn.k_proj.bias", "blk.{}.attn_k.bias", {Dim::kKv}},
                 {"model.layers.{}.self_attn.v_proj.bias", "blk.{}.attn_v.bias", {Dim::kKv}},
             });

  return {
      {"Phi3ForCausalLM", "phi3", phi3_kvs, GlobalTensors(), phi3_layers, RopeScalingRule::kPhi3},
      {"LlamaForCausalLM", "llama", llama_kvs, GlobalTensors(), llama_layers,
       RopeScalingRule::kLlama},
      {"MistralForCausalLM", "llama", llama_kvs, GlobalTensors(), llama_layers,
       RopeScalingRule::kLlama},
      {"Qwen2ForCausalLM", "qwen2", qwen2_kvs, GlobalTensors(), qwen2_layers,
       RopeScalingRule::kQwen2},
  };
}

absl::Status ConfigError(absl::string_view key, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("config.json: '", key, "' ", what));
}

}  // namespace

const std::vector<Architecture>& Architectures() {
  static const std::vector<Architecture>* const kTable =
      new std::vector<Architecture>(BuildTable());
  return *kTable;
}

absl::StatusOr<const Architecture*> FindArchitecture(const json& config) {
  std::vector<std::string> supported;
  for (const Architecture& a : Architectures()) supported.push_back(a.hf_class);
  auto it = config.find("architectures");
  if (it == config.end() || !it->is_array() || it->empty() || !(*it)[0].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json has no \"architectures\" list; Quantd supports ",
                     absl::StrJoin(supported, ", ")));
  }
  const std::string name = (*it)[0].get<std::string>();
  for (const Architecture& a : Architectures()) {
    if (name == a.hf_class) return &a;
  }
  return absl::InvalidArgumentError(absl::StrCat("architecture ", name,
                                                 " is not supported; Quantd supports ",
                                                 absl::StrJoin(supported, ", ")));
}

absl::StatusOr<std::optional<int64_t>> ConfigInt(const json& config, absl::string_view key) {
  auto it = config.find(std::string(key));
  if (it == config.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) return ConfigError(key, "is not an integer");
  return std::optional<int64_t>(it->get<int64_t>());
}

absl::StatusOr<std::optional<double>> ConfigNumber(const json& config, absl::string_view key) {
  auto it = config.find(std::string(key));
  if (it == config.end() || it->is_null()) return std::optional<double>();
  if (!it->is_number()) return ConfigError(key, "is not a number");
  return std::optional<double>(it->get<double>());
}

int64_t Hparams::DimValue(Dim d) const {
  switch (d) {
    case Dim::kHidden:
      return hidden;
    case Dim::kVocab:
      return vocab;
    case Dim::kQ:
      return heads * head_dim;
    case Dim::kKv:
      return kv_heads * head_dim;
    case Dim::kQkv:
      return (heads + 2 * kv_heads) * head_dim;
    case Dim::kFfn:
      return ffn;
    case Dim::kFfn2:
      return 2 * ffn;
  }
  return 0;
}

absl::StatusOr<Hparams> ReadHparams(const json& config) {
  Hparams h;
  auto required = [&](absl::string_view key, int64_t* out) -> absl::Status {
    QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> v, ConfigInt(config, key));
    if (!v) return ConfigError(key, "is missing");
    if (*v <= 0 || *v > (int64_t{1} << 40))
      return ConfigError(key, absl::StrCat("is ", *v, ", not a positive size"));
    *out = *v;
    return absl::OkStatus();
  };
  QUANTD_RETURN_IF_ERROR(required("hidden_size", &h.hidden));
  QUANTD_RETURN_IF_ERROR(required("num_hidden_layers", &h.layers));
  QUANTD_RETURN_IF_ERROR(required("num_attention_heads", &h.heads));
  QUANTD_RETURN_IF_ERROR(required("intermediate_size", &h.ffn));
  QUANTD_RETURN_IF_ERROR(required("vocab_size", &h.vocab));
  QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> kv, ConfigInt(config, "num_key_value_heads"));
  h.kv_heads = kv.value_or(h.heads);
  if (h.kv_heads <= 0 || h.heads % h.kv_heads != 0) {
    return ConfigError("num_key_value_heads",
                       absl::StrCat("is ", h.kv_heads, ", which does not divide ",
                                    "num_attention_heads ", h.heads));
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> hd, ConfigInt(config, "head_dim"));
  if (hd) {
    h.head_dim = *hd;
  } else {
    if (h.hidden % h.heads != 0) {
      return ConfigError("hidden_size",
                         absl::StrCat("(", h.hidden, ") is not a multiple of num_attention_heads (",
                                      h.heads, ")"));
    }
    h.head_dim = h.hidden / h.heads;
  }
  if (h.head_dim <= 0) return ConfigError("head_dim", "is not positive");
  auto tie = config.find("tie_word_embeddings");
  h.tied_embeddings = tie != config.end() && tie->is_boolean() && tie->get<bool>();
  return h;
}

}  // namespace quantd::core::checkpoint
