// Decoder layer numbers read from tensor and node names, and the recipe's
// per-layer INT8 choice inside INT4 models (Recipe::int8_first_layers,
// int8_last_layers, int8_regex).
//
// Exporters name layers in a few ways; all of these give layer 12:
//   /model/layers.12/mlp/down_proj/MatMul      (ONNX Runtime GenAI builder)
//   model.layers.12.mlp.down_proj.MatMul.weight (its initializers)
//   layers.12.attention.wq.weight, /layers.12/... (torch.onnx, Meta)
//   transformer.h.12.mlp.c_fc.weight, /h.12/...  (GPT-2 style)
//   blocks.12.attn..., /block.12/, layer.12., layer_12, layers_12
// A layer token is one of `layers`, `layer`, `blocks`, `block`, `h`, standing
// alone between separators (start, '.', '/', '_', ':') and followed by a
// separator and a decimal number that ends at a separator or the end.
//
// Pure functions and an immutable selector; thread-safe.
#ifndef QUANTD_CORE_LAYER_INDEX_H_
#define QUANTD_CORE_LAYER_INDEX_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "quantd/core/name_patterns.h"
#include "quantd/core/recipe.h"

namespace quantd::core {

// The layer number in `name` (the first layer token found), or nullopt.
std::optional<int> LayerIndex(absl::string_view name);

// Which quantized weights of an INT4 recipe get 8 bits instead: those whose
// layer is among the first `int8_first_layers` or the last `int8_last_layers`
// of a model with `num_layers` layers, and those whose node name fully
// matches one of `int8_regex` (RE2, as name_patterns.h).
class Int8Selection {
 public:
  // Compiles recipe.int8_regex (InvalidArgument naming `int8_regex`).
  static absl::StatusOr<Int8Selection> Create(const Recipe& recipe, int num_layers);

  // Whether nothing can be selected.
  bool empty() const;
  // `layer`: the weight's layer (LayerIndex of the node name, else of the
  // weight's name), nullopt when neither names one.
  bool Selects(absl::string_view node_name, std::optional<int> layer) const;
  // Why, for reports: "first 2 layers", "last 1 layers", "int8_regex".
  std::string Reason(absl::string_view node_name, std::optional<int> layer) const;

 private:
  int first_ = 0;
  int last_ = 0;
  int num_layers_ = 0;
  NamePatterns regex_;
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_LAYER_INDEX_H_
