// Decoder architectures Quantd reads from Hugging Face checkpoints, as data:
// one table row per config.json "architectures" class, naming the GGUF
// architecture, the metadata keys in the order llama.cpp's converter (b4747)
// writes them, the tensor-name map with the shape config.json implies for
// each tensor, and the rope-scaling rule. Writers (GGUF today) walk the
// table; there is no code path per architecture.
//
// Supported: Phi3ForCausalLM (Phi-3/3.5/4 and Phi-4-mini: fused qkv and
// gate_up, LongRoPE factors, partial_rotary_factor), LlamaForCausalLM and
// MistralForCausalLM (q/k rows permuted for ggml's rope), Qwen2ForCausalLM
// (q/k/v biases).
//
// Thread safety: the table is immutable; functions are pure.
#ifndef QUANTD_CORE_CHECKPOINT_ARCHITECTURE_H_
#define QUANTD_CORE_CHECKPOINT_ARCHITECTURE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace quantd::core::checkpoint {

// Where an architecture metadata value comes from (see architecture.cc for
// the config.json keys behind each).
enum class KvSource {
  kBlockCount,
  kContextLength,          // max_position_embeddings, optional
  kContextLengthRequired,  // n_positions | max_position_embeddings
  kOriginalContextLength,  // original_max_position_embeddings, required
  kEmbeddingLength,
  kFeedForwardLength,
  kHeadCount,
  kHeadCountKv,  // num_key_value_heads, optional
  kHeadCountKvRequired,
  kRopeFreqBase,  // rope_theta, optional
  kRopeFreqBaseRequired,
  kRmsEps,  // rms_norm_eps, optional
  kRmsEpsRequired,
  kLayerNormEps,    // layer_norm_eps | layer_norm_epsilon | norm_epsilon, optional
  kKeyValueLength,  // head_dim -> key_length and value_length, optional
  kFileType,        // general.file_type
  kVocabSize,
  kRopeDimsHeadDim,      // head_dim, else hidden_size / heads
  kRopeDimsPartial,      // int(partial_rotary_factor * hidden_size) / heads
  kSlidingWindowOrZero,  // sliding_window, 0 when null or absent
  kRopeScalingLinear,    // rope.scaling.type "linear" + factor, if configured
  kRopeScalingYarn,      // rope.scaling.type "yarn" + factor + original ctx
};

struct KvRule {
  const char* key;  // after "<arch>." ("general.file_type" for kFileType)
  KvSource source;
};

// Dimensions a tensor shape is made of.
enum class Dim { kHidden, kVocab, kQ, kKv, kQkv, kFfn, kFfn2 };

// How rows are reordered on the way to GGUF (llama.cpp's LlamaModel.permute:
// HF's rotate-half rope layout -> ggml's interleaved layout).
enum class Permute { kNone, kHeads, kKvHeads };

struct TensorRule {
  const char* hf;          // HF name; "{}" stands for the layer index
  const char* gguf;        // GGUF name; "{}" as above
  std::vector<Dim> shape;  // outermost first, as stored in the checkpoint
  Permute permute = Permute::kNone;
  bool optional = false;  // lm_head when embeddings are tied
};

// The rope_scaling types an architecture accepts.
enum class RopeScalingRule {
  kPhi3,   // longrope / su / yarn: attention factor + long/short factor tensors
  kLlama,  // none / "default", or linear (factor)
  kQwen2,  // none / "default", or yarn (factor, original context)
};

struct Architecture {
  const char* hf_class;   // config.json "architectures"[0]
  const char* gguf_arch;  // general.architecture
  std::vector<KvRule> kvs;
  std::vector<TensorRule> global_tensors;
  std::vector<TensorRule> layer_tensors;
  RopeScalingRule rope_scaling;
};

// The whole table.
const std::vector<Architecture>& Architectures();

// The row for config["architectures"][0]; InvalidArgument naming the class
// and listing the supported ones otherwise.
absl::StatusOr<const Architecture*> FindArchitecture(const nlohmann::json& config);

// Hyper-parameters read from config.json (validated: positive, divisible).
struct Hparams {
  int64_t hidden = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;  // head_dim, else hidden / heads
  int64_t ffn = 0;
  int64_t vocab = 0;
  bool tied_embeddings = false;

  int64_t DimValue(Dim d) const;
};

absl::StatusOr<Hparams> ReadHparams(const nlohmann::json& config);

// Reads an integer / number from config.json; nullopt when absent or null,
// InvalidArgument when present with the wrong type.
absl::StatusOr<std::optional<int64_t>> ConfigInt(const nlohmann::json& config,
                                                 absl::string_view key);
absl::StatusOr<std::optional<double>> ConfigNumber(const nlohmann::json& config,
                                                   absl::string_view key);

}  // namespace quantd::core::checkpoint

#endif  // QUANTD_CORE_CHECKPOINT_ARCHITECTURE_H_
