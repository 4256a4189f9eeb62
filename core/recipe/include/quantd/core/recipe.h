// Recipe: everything a user can ask of one conversion, format-neutral.
//
// This is the single definition the offline `quantd quantize`, the service
// (proto <-> Recipe translation in server/) and `quantctl` share. The flag
// table that parses it lives in recipe_flags.h. Library `quantd_recipe`
// depends only on Abseil, so thin clients can link it without the numerics.
#ifndef QUANTD_CORE_RECIPE_H_
#define QUANTD_CORE_RECIPE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace quantd::core {

// kMlx is an output format only: Apple MLX folders written from a Hugging
// Face checkpoint folder (docs/mlx.md).
enum class ModelFormat { kAuto, kOnnx, kGguf, kMlx };
enum class Precision { kUnspecified, kFp32, kFp16, kInt8, kInt4 };
enum class ExternalDataMode { kAuto, kAlways, kNever };
enum class Int4Format { kMatMulNBits, kQdq };
// kMatMulNBits: blockwise 8-bit com.microsoft.MatMulNBits (block_size,
// symmetric apply), the form ONNX Runtime GenAI models use for int8.
enum class Int8Mode { kWeightOnly, kDynamic, kMatMulNBits };
enum class Int8WeightType { kQInt8, kQUInt8 };
enum class LmHeadMode { kFloat, kInt8, kInt4 };
enum class QuantAlgorithm { kRtn, kSearch };
// Quality figures a conversion computes: kSummary (default) measures the
// error figures over every weight and the output error X W on a fixed-seed
// sample of columns; kFull measures X W over every column; kNone computes no
// figures. Never changes the output bytes.
enum class ReportLevel { kSummary, kNone, kFull };

// How quantized embedding tables are read: standard DequantizeLinear + Gather,
// or ONNX Runtime's com.microsoft.GatherBlockQuantized (no opset 21 needed).
enum class EmbeddingOp { kGather, kGatherBlockQuantized };

struct Recipe {
  // --- what ---
  ModelFormat format = ModelFormat::kAuto;  // kAuto: from the input's magic bytes
  Precision precision = Precision::kUnspecified;
  std::string preset;  // name it was expanded from, if any (informational)

  // --- ONNX float conversion (fp16 / fp32) ---
  bool keep_io_types = true;                              // Casts at the graph edges
  std::optional<std::vector<std::string>> op_block_list;  // unset: the default list
  std::vector<std::string> node_block_list;
  ExternalDataMode external_data = ExternalDataMode::kAuto;
  // FP16: convert nodes whose constants exceed the FP16 range anyway
  // (clamped to +-65504). Unset, such nodes stay FP32 with Casts around them.
  bool force_fp16 = false;

  // --- ONNX INT4 ---
  int block_size = 32;  // 16, 32, 64, 128, 256
  bool symmetric = true;
  // MatMulNBits accuracy_level 0..4. Unset: the attribute is left out for
  // ONNX inputs (0, float compute); a checkpoint export uses the GenAI model
  // builder's CPU default, 4 (int8 activations).
  std::optional<int> accuracy_level;
  Int4Format int4_format = Int4Format::kMatMulNBits;
  QuantAlgorithm algorithm = QuantAlgorithm::kRtn;

  // --- ONNX INT8 ---
  Int8Mode int8_mode = Int8Mode::kWeightOnly;
  Int8WeightType int8_weight_type = Int8WeightType::kQInt8;
  bool per_channel = false;
  bool reduce_range = false;

  // --- selection / mixed precision (INT4 and INT8) ---
  std::vector<std::string> op_types;       // empty: MatMul (int4); MatMul, Gemm, Conv (int8)
  std::vector<std::string> exclude_nodes;  // exact node names
  std::vector<std::string> exclude_regex;  // RE2/ECMAScript regexes on node names
  // Embedding tables stay float. Unset: the format's default, see
  // KeepEmbeddings() (ONNX keeps them, MLX quantizes them as mlx-lm does).
  std::optional<bool> keep_embeddings;
  // Applies when precision is int4/int8. Unset: float for ONNX inputs; a
  // checkpoint export quantizes it like the other MatMuls, as the GenAI
  // model builder does.
  std::optional<LmHeadMode> lm_head;
  uint64_t min_tensor_elements = 0;         // smaller weights are not quantized
  // The LM head's node name (exact). Empty: the MatMul/Gemm nearest a graph
  // output named *logits*, else found by structure (weight width = an
  // embedding table's rows, feeding a graph output).
  std::string lm_head_node;
  // INT4 only: weights kept at 8 bits (INT8 per-channel weight-only QDQ)
  // inside the INT4 model, by decoder layer (the first / last N layers, layer
  // numbers read from names as layer_index.h does) and by node name (RE2,
  // whole-name match, as exclude_regex).
  // INT4 recipes that quantize embeddings: INT8 per row instead of INT4
  // (NNCF's default backup precision for embeddings).
  bool int8_embeddings = false;
  // Quantized embeddings (--quantize-embeddings): the operator that reads
  // them. GatherBlockQuantized is 4-bit for INT4 embeddings, 8-bit for INT8
  // ones (precision int8, or int8_embeddings).
  EmbeddingOp embedding_op = EmbeddingOp::kGather;
  int int8_first_layers = 0;
  int int8_last_layers = 0;
  std::vector<std::string> int8_regex;

  // --- GGUF (llama-quantize compatible) ---
  std::string gguf_type;  // "Q4_K_M", "Q8_0", ... (file type)
  bool leave_output_tensor = false;
  std::string output_tensor_type;  // ggml type name, e.g. "q8_0"
  std::string token_embedding_type;
  bool pure = false;
  bool allow_requantize = false;
  // Importance matrix (llama-imatrix output, legacy .dat or GGUF): a file
  // path for the core; the service resolves an uploaded blob to its path.
  std::string imatrix;
  std::vector<std::string> imatrix_include;  // keep only entries whose name contains one
  std::vector<std::string> imatrix_exclude;  // drop entries whose name contains one
  // "REGEX=TYPE": tensors whose name the (RE2, lower-cased) regex finds get
  // the ggml type TYPE instead of the mix's choice; the first pattern whose
  // type differs from the default wins, as in llama-quantize.
  std::vector<std::string> tensor_types;
  std::vector<int> prune_layers;  // block indices removed (the rest renumbered)
  bool dry_run = false;           // plan and output size only; nothing written
  // Split output in llama.cpp's layout (<out>-00001-of-0000N.gguf): the
  // input's parts, or parts of at most split_max_bytes of tensor data.
  bool keep_split = false;
  uint64_t split_max_bytes = 0;

  // --- MLX (mlx_lm.convert compatible affine quantization) ---
  int bits = 0;            // 2, 3, 4, 5, 6, 8; 0: from precision (int4 / int8), else 4
  int group_size = 64;     // 32, 64, 128
  std::string mlx_recipe;  // "" or mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6

  // --- execution ---
  int threads = 1;  // thread budget for this run
  ReportLevel report_level = ReportLevel::kSummary;

  // --- Hugging Face checkpoint folders ---
  // The folder name general.name and the other general.* naming keys are
  // derived from (empty: the input folder's own name). Only for checkpoints.
  std::string model_name;
};

// Whether embedding tables stay float: recipe.keep_embeddings when set, else
// the format's default (true, except for MLX, which quantizes them).
bool KeepEmbeddings(const Recipe& recipe);

// The code width of an MLX conversion: recipe.bits when set, else 8 for
// precision int8, else 4.
int MlxBits(const Recipe& recipe);

// The mixed recipes an MLX conversion accepts: "mixed_2_6", "mixed_3_4",
// "mixed_3_6", "mixed_4_6" (mlx_lm.convert's --quant-predicate names).
std::vector<std::string> MlxMixedRecipeNames();

// What an MLX conversion is called in reports and metric labels: the mixed
// recipe's name when there is one, else "<bits>bit" ("4bit").
std::string MlxPrecisionName(const Recipe& recipe);
// Every name MlxPrecisionName can return: "2bit" ... "8bit", then the mixed
// recipes.
std::vector<std::string> MlxPrecisionNames();

// Checks ranges and combinations; InvalidArgument with a message naming the
// offending field as quantd.v1.Recipe names it (`block_size`, `gguf_type`)
// and its allowed values. Core messages name fields, never command-line
// flags; a CLI adds its flags with WithFlagHint() (recipe_flags.h).
// exclude_regex is compiled (name_patterns.h: RE2, count and length caps).
absl::Status ValidateRecipe(const Recipe& recipe);

// A model name (recipe.model_name, an uploaded checkpoint's folder name):
// [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters. InvalidArgument naming
// `model_name` otherwise.
absl::Status ValidateModelName(absl::string_view name);

// A canonical one-line text form (every field, fixed order). Equal recipes
// give equal strings; the service hashes it for de-duplication.
std::string CanonicalRecipe(const Recipe& recipe);

// A named recipe for a deployment target (`quantd presets`).
struct Preset {
  std::string name;
  std::string description;
  Recipe recipe;  // what the preset asks for; recipe.preset == name
  // The fields the preset sets, named as in quantd.v1.Recipe and in the order
  // `quantd presets` shows them. Every field of `recipe` that differs from a
  // default Recipe is listed (a test checks it), so the flags shown for a
  // preset (PresetFlags) give back exactly `recipe`.
  std::vector<std::string> fields;
};

// The presets, one typed table: phones and IoT boxes (INT4), AI PCs (INT8,
// FP16, FP32), llama.cpp (GGUF).
const std::vector<Preset>& Presets();

// The preset called `name`; InvalidArgument naming the known presets.
absl::StatusOr<const Preset*> FindPreset(absl::string_view name);

// Names, as used on the command line and in reports.
std::string PrecisionName(Precision p);
// Every precision's name, in enum order: "fp32", "fp16", "int8", "int4".
std::vector<std::string> PrecisionNames();
std::string FormatName(ModelFormat f);
absl::StatusOr<Precision> ParsePrecision(const std::string& s);

}  // namespace quantd::core

#endif  // QUANTD_CORE_RECIPE_H_
