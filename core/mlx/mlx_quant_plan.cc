#include "quantd/core/mlx/mlx_quant_plan.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "quantd/core/name_patterns.h"
#include "quantd/core/quant/mlx_affine.h"

namespace quantd::core::mlx {
namespace {

struct RecipeBits {
  int low;
  int high;
};

RecipeBits BitsOf(MlxMixedRecipe r) {
  switch (r) {
    case MlxMixedRecipe::kMixed2_6:
      return {2, 6};
    case MlxMixedRecipe::kMixed3_4:
      return {3, 4};
    case MlxMixedRecipe::kMixed3_6:
      return {3, 6};
    case MlxMixedRecipe::kMixed4_6:
      return {4, 6};
    case MlxMixedRecipe::kNone:
      break;
  }
  return {0, 0};
}

bool IsFloatDtype(absl::string_view d) { return d == "F32" || d == "F16" || d == "BF16"; }

// The last path component names an embedding table (embed_tokens, wte,
// word_embeddings, ...).
bool IsEmbeddingModule(absl::string_view module) {
  absl::string_view last = module.substr(module.rfind('.') + 1);
  return absl::StrContains(last, "embed") || last == "wte";
}

bool AllDigits(absl::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
}

nlohmann::ordered_json ParamsJson(int group_size, int bits) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["group_size"] = group_size;
  j["bits"] = bits;
  j["mode"] = "affine";
  return j;
}

}  // namespace

absl::StatusOr<MlxMixedRecipe> ParseMlxMixedRecipe(absl::string_view name) {
  if (name.empty() || name == "none") return MlxMixedRecipe::kNone;
  if (name == "mixed_2_6") return MlxMixedRecipe::kMixed2_6;
  if (name == "mixed_3_4") return MlxMixedRecipe::kMixed3_4;
  if (name == "mixed_3_6") return MlxMixedRecipe::kMixed3_6;
  if (name == "mixed_4_6") return MlxMixedRecipe::kMixed4_6;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown MLX mixed recipe \"", name,
                   "\"; choose mixed_2_6, mixed_3_4, mixed_3_6 or mixed_4_6"));
}

absl::string_view MlxMixedRecipeName(MlxMixedRecipe recipe) {
  switch (recipe) {
    case MlxMixedRecipe::kNone:
      return "none";
    case MlxMixedRecipe::kMixed2_6:
      return "mixed_2_6";
    case MlxMixedRecipe::kMixed3_4:
      return "mixed_3_4";
    case MlxMixedRecipe::kMixed3_6:
      return "mixed_3_6";
    case MlxMixedRecipe::kMixed4_6:
      return "mixed_4_6";
  }
  return "none";
}

absl::StatusOr<MlxQuantPlan> PlanMlxQuantization(const std::vector<MlxTensorInfo>& tensors,
                                                 int64_t num_layers,
                                                 const MlxQuantOptions& options) {
  if (!quant::MlxAffineBitsSupported(options.bits)) {
    return absl::InvalidArgumentError(
        absl::StrCat("MLX bits ", options.bits, " is not supported; choose 2, 3, 4, 5, 6 or 8"));
  }
  if (!quant::MlxAffineGroupSizeSupported(options.group_size)) {
    return absl::InvalidArgumentError(absl::StrCat("MLX group size ", options.group_size,
                                                   " is not supported; choose 32, 64 or 128"));
  }
  absl::StatusOr<NamePatterns> excludes =
      NamePatterns::Compile(options.exclude_regex, "exclude regex");
  if (!excludes.ok()) return excludes.status();
  auto excluded = [&](const std::string& name, const std::string& module) {
    for (const std::string& n : options.exclude_names) {
      if (n == name || n == module) return true;
    }
    return excludes->FullMatchAny(name) || excludes->FullMatchAny(module);
  };

  MlxQuantPlan plan;
  plan.quantization = ParamsJson(options.group_size, options.bits);
  plan.tensors.resize(tensors.size());

  // Mixed recipes: where the layer index sits in a module path.
  size_t layer_location = 0;
  if (options.recipe != MlxMixedRecipe::kNone) {
    bool found = false;
    for (const MlxTensorInfo& t : tensors) {
      if (!absl::StrContains(t.name, "down_proj")) continue;
      std::vector<absl::string_view> parts = absl::StrSplit(t.name, '.');
      layer_location = parts.size() - 1;  // no digit: the last component
      for (size_t i = 0; i < parts.size(); ++i) {
        if (AllDigits(parts[i])) {
          layer_location = i;
          break;
        }
      }
      found = true;
      break;
    }
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("MLX recipe ", MlxMixedRecipeName(options.recipe),
                       " needs down_proj layers, and this model has none"));
    }
  }
  const RecipeBits rb = BitsOf(options.recipe);

  for (size_t i = 0; i < tensors.size(); ++i) {
    const MlxTensorInfo& t = tensors[i];
    MlxTensorDecision& d = plan.tensors[i];
    const bool is_weight = absl::EndsWith(t.name, ".weight");
    d.module = is_weight ? t.name.substr(0, t.name.size() - 7) : t.name;
    if (!is_weight || t.shape.size() != 2 || !IsFloatDtype(t.dtype)) {
      d.kept_why = "not a Linear or Embedding weight";
      continue;
    }
    if (t.shape[1] % options.group_size != 0) {
      d.kept_why = absl::StrCat("input size ", t.shape[1], " is not a multiple of group size ",
                                options.group_size);
      continue;
    }
    if (options.keep_embeddings && IsEmbeddingModule(d.module)) {
      d.kept_why = "embedding kept float";
      continue;
    }
    if (excluded(t.name, d.module)) {
      d.kept_why = "excluded";
      continue;
    }
    d.quantize = true;
    d.group_size = options.group_size;
    d.bits = options.bits;
    if (options.recipe == MlxMixedRecipe::kNone) continue;

    std::vector<absl::string_view> parts = absl::StrSplit(d.module, '.');
    int64_t index = 0;
    if (parts.size() > layer_location && !absl::SimpleAtoi(parts[layer_location], &index)) {
      index = 0;
    }
    const int64_t n = num_layers;
    const bool more = index < n / 8 || index >= 7 * n / 8 || (index - n / 8) % 3 == 2;
    const absl::string_view m = d.module;
    const bool v_like = absl::StrContains(m, "v_proj") || absl::StrContains(m, "v_a_proj") ||
                        absl::StrContains(m, "v_b_proj");
    if ((v_like && more) || (absl::StrContains(m, "down_proj") && more) ||
        absl::StrContains(m, "lm_head")) {
      d.bits = rb.high;
    } else {
      d.bits = rb.low;
    }
    plan.quantization[d.module] = ParamsJson(d.group_size, d.bits);
  }
  return plan;
}

}  // namespace quantd::core::mlx
