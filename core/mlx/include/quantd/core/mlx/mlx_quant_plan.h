// Which tensors of a Hugging Face checkpoint an MLX conversion quantizes, at
// how many bits, and the `quantization` object config.json gets - the rules
// of `mlx_lm.convert` (mlx_lm/utils.py quantize_model, mlx_lm/convert.py
// mixed_quant_predicate_builder), on tensor names instead of MLX modules:
//
//  * Quantized: every Linear and Embedding weight, i.e. a 2-D F32/F16/BF16
//    tensor named "<module>.weight" (lm_head and embed_tokens included; norms
//    are 1-D, Linear biases are "<module>.bias"), whose last dimension (the
//    input size) is a multiple of the group size. Everything else stays float.
//  * Mixed recipes mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6 (low/high bits):
//    with L = num_hidden_layers and i the module's layer index (the path
//    component at the position of the first digit component of the first
//    "down_proj" module; 0 when the path is shorter), a layer "uses more
//    bits" when i < L/8, i >= 7L/8 or (i - L/8) % 3 == 2 (integer division).
//    High bits go to modules whose path contains "v_proj", "v_a_proj" or
//    "v_b_proj" (substring: Phi-3's fused qkv_proj matches) or "down_proj" on
//    such layers, and to "lm_head"; every other module gets low bits. Every
//    quantized module then gets its own {"group_size", "bits", "mode"} entry
//    in the config's quantization object (keyed by module path).
//  * Beyond mlx-lm: keep_embeddings leaves embedding tables float (MLX loads
//    a module as quantized only when "<module>.scales" exists, so a float
//    embedding loads as is), and exclusions by exact name or by RE2 regex
//    (full match, name_patterns.h) on the tensor name or the module path.
//
// Thread safety: pure functions.
#ifndef QUANTD_CORE_MLX_MLX_QUANT_PLAN_H_
#define QUANTD_CORE_MLX_MLX_QUANT_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace quantd::core::mlx {

enum class MlxMixedRecipe { kNone, kMixed2_6, kMixed3_4, kMixed3_6, kMixed4_6 };

// "mixed_2_6" ... ; "" or "none" is kNone. InvalidArgument otherwise.
absl::StatusOr<MlxMixedRecipe> ParseMlxMixedRecipe(absl::string_view name);
absl::string_view MlxMixedRecipeName(MlxMixedRecipe recipe);

struct MlxQuantOptions {
  int bits = 4;         // 2, 3, 4, 5, 6 or 8 (the config's top-level bits)
  int group_size = 64;  // 32, 64 or 128
  MlxMixedRecipe recipe = MlxMixedRecipe::kNone;
  bool keep_embeddings = false;
  std::vector<std::string> exclude_names;  // exact tensor names or module paths
  std::vector<std::string> exclude_regex;  // RE2 (name_patterns.h), full match
};

// What the plan needs to know of a tensor.
struct MlxTensorInfo {
  std::string name;
  std::string dtype;  // safetensors dtype name: "F32", "F16", "BF16", ...
  std::vector<int64_t> shape;
};

struct MlxTensorDecision {
  bool quantize = false;
  int bits = 0;          // when quantized
  int group_size = 0;    // when quantized
  std::string module;    // "<module>" of "<module>.weight", else the name
  std::string kept_why;  // when float: why (for reports and logs)
};

struct MlxQuantPlan {
  std::vector<MlxTensorDecision> tensors;  // parallel to the input
  // config.json's "quantization" (and "quantization_config") object.
  nlohmann::ordered_json quantization;
};

// REQUIRES nothing; InvalidArgument for unsupported bits / group size, a bad
// regex, or a mixed recipe on a model without "down_proj" modules.
// `num_layers` is config.json's num_hidden_layers (used by mixed recipes).
absl::StatusOr<MlxQuantPlan> PlanMlxQuantization(const std::vector<MlxTensorInfo>& tensors,
                                                 int64_t num_layers,
                                                 const MlxQuantOptions& options);

}  // namespace quantd::core::mlx

#endif  // QUANTD_CORE_MLX_MLX_QUANT_PLAN_H_
