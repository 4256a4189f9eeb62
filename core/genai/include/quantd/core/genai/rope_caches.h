// Rotary-embedding caches for a decoder exported to ONNX: the cos/sin tables
// com.microsoft.GroupQueryAttention reads (do_rotary=1), computed from a
// Hugging Face config.json the way the model's rotary class does.
//
//   rot      = int(head_dim * partial_rotary_factor)
//   inv_freq = 1 / (f_i * theta^(2i / rot)),  i = 0 .. rot/2 - 1   (float32)
//   cos[p][i] = cos(p * inv_freq_i) * mscale, sin likewise, p < positions
//
// Only the first rot/2 columns are stored (GQA applies rotate-half with the
// same table for both halves), so a table is [positions, rot/2] float32.
//
//  * no rope_scaling (or "default"): one table, f = 1, positions =
//    max_position_embeddings;
//  * "linear" (Llama): positions are divided by the factor (p / factor);
//  * LongRoPE (Phi-3 "longrope"/"su", short_factor + long_factor): two tables,
//    "small" with the short factors over original_max_position_embeddings
//    positions and "large" with the long factors over max_position_embeddings,
//    both scaled by mscale = short_mscale / long_mscale from the config when
//    given, else sqrt(1 + ln(max / original) / ln(original)) (1 when
//    max <= original). The graph picks "large" once the total sequence length
//    exceeds original_max_position_embeddings.
// Other scaling types are refused (InvalidArgument naming the type).
//
// Thread safety: pure functions.
#ifndef QUANTD_CORE_GENAI_ROPE_CACHES_H_
#define QUANTD_CORE_GENAI_ROPE_CACHES_H_

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "quantd/core/checkpoint/architecture.h"

namespace quantd::core::genai {

struct RopeSpec {
  int64_t rotary_dim = 0;  // even, <= head_dim
  double theta = 10000.0;
  double linear_factor = 1.0;
  bool longrope = false;
  int64_t max_positions = 0;                     // rows of the (large) table
  int64_t original_positions = 0;                // rows of the small table (LongRoPE)
  std::vector<float> short_factor, long_factor;  // rot/2 each (LongRoPE)
  float short_mscale = 1.0f, long_mscale = 1.0f;
};

absl::StatusOr<RopeSpec> ReadRopeSpec(const nlohmann::json& config,
                                      const checkpoint::Hparams& hparams);

// One table pair: cos and sin, [rows, rotary_dim/2] row-major float32.
struct RopeTable {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> cos, sin;
};

// `large` selects the long-factor table (LongRoPE only); otherwise the one
// table, or the short-factor one.
RopeTable ComputeRopeTable(const RopeSpec& spec, bool large);

}  // namespace quantd::core::genai

#endif  // QUANTD_CORE_GENAI_ROPE_CACHES_H_
