// BuildDecoderGraph: the ONNX decoder the ONNX Runtime GenAI model builder
// makes for a Hugging Face causal LM on CPU (docs/genai.md lists it node by
// node), built from a Checkpoint without reading a single weight: every
// weight is a deferred initializer whose producer reads, converts to float32
// and rearranges the checkpoint tensors (transpose to [in, out], q|k|v packed
// into one matrix, gate_up split) when OnnxModel::Save() asks for it, one
// tensor at a time.
//
// Graph (float32 I/O):
//   in : input_ids int64 [batch_size, sequence_length],
//        attention_mask int64 [batch_size, total_sequence_length],
//        past_key_values.{i}.key for every layer, then .value for every layer,
//          float [batch_size, kv_heads, past_sequence_length, head_dim]
//   out: logits float [batch_size, sequence_length, vocab],
//        present.{i}.key ..., present.{i}.value ...
//          [batch_size, kv_heads, total_sequence_length, head_dim]
//   attention_mask -> seqlens_k (sum - 1, int32) and total_seq_len (int32);
//   Gather(embed_tokens) (tied: Transpose of the shared LM head matrix);
//   per layer: SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization,
//   packed QKV MatMul (+ bias Add for Qwen2), com.microsoft.GroupQueryAttention
//   with rotary inside (do_rotary=1, rotate-half), o_proj MatMul,
//   SkipSimplifiedLayerNormalization, gate/up MatMuls, SiLU as Sigmoid + Mul,
//   Mul, down MatMul; final SkipSimplifiedLayerNormalization; /lm_head/MatMul.
//   LongRoPE: an If on total length > original_max_position_embeddings picks
//   the large or the small cos/sin caches (both initializers).
// The GQA windowed KV cache (sliding_window_cache) is not used: it needs a
// past buffer as long as the window (262144 for Phi-3.5), which plain ONNX
// Runtime callers do not allocate; local_window_size still applies the
// model's sliding window to attention.
//
// Ownership: the returned model's producers read `ckpt`, which must outlive
// the model's Save(). Thread safety: not thread-safe (one job).
#ifndef QUANTD_CORE_GENAI_DECODER_GRAPH_H_
#define QUANTD_CORE_GENAI_DECODER_GRAPH_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "quantd/core/checkpoint/architecture.h"
#include "quantd/core/checkpoint/checkpoint.h"
#include "quantd/core/genai/rope_caches.h"
#include "quantd/core/onnx/onnx_model.h"
#include "quantd/core/run_context.h"

namespace quantd::core::genai {

// Names the rest of the export refers to.
inline constexpr char kLmHeadNode[] = "/lm_head/MatMul";
inline constexpr char kLmHeadWeight[] = "lm_head.MatMul.weight";
inline constexpr char kEmbeddingNode[] = "/model/embed_tokens/Gather";
inline constexpr char kEmbeddingTranspose[] = "/model/embed_tokens/Transpose";

struct DecoderSpec {
  const checkpoint::Architecture* arch = nullptr;
  checkpoint::Hparams hparams;
  RopeSpec rope;
  double rms_eps = 1e-5;
  int64_t local_window = -1;  // GQA local_window_size; -1: none
};

// Reads the spec from config.json; InvalidArgument for what the ONNX export
// cannot express (unsupported rope scaling, a rotary table GQA refuses).
absl::StatusOr<DecoderSpec> ReadDecoderSpec(const checkpoint::Checkpoint& ckpt);

// Builds the float32 decoder. Validates that every tensor the graph needs is
// in the checkpoint with the shape config.json implies (InvalidArgument
// naming the tensor otherwise). The weights are made when the model is read
// or saved, on ctx's threads: ctx must outlive the model.
absl::StatusOr<std::unique_ptr<OnnxModel>> BuildDecoderGraph(const checkpoint::Checkpoint& ckpt,
                                                             const DecoderSpec& spec,
                                                             const std::string& base_dir,
                                                             const RunContext& ctx);

}  // namespace quantd::core::genai

#endif  // QUANTD_CORE_GENAI_DECODER_GRAPH_H_
