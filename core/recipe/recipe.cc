#include "quantd/core/recipe.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quantd/core/name_patterns.h"

namespace quantd::core {

namespace {

struct PrecisionEntry {
  const char* name;
  Precision precision;
};
constexpr PrecisionEntry kPrecisions[] = {
    {"fp32", Precision::kFp32},
    {"fp16", Precision::kFp16},
    {"int8", Precision::kInt8},
    {"int4", Precision::kInt4},
};

}  // namespace

std::string PrecisionName(Precision p) {
  for (const auto& e : kPrecisions) {
    if (e.precision == p) return e.name;
  }
  return "unspecified";
}

std::vector<std::string> PrecisionNames() {
  std::vector<std::string> names;
  for (const auto& e : kPrecisions) names.emplace_back(e.name);
  return names;
}

std::string FormatName(ModelFormat f) {
  switch (f) {
    case ModelFormat::kOnnx:
      return "onnx";
    case ModelFormat::kGguf:
      return "gguf";
    case ModelFormat::kMlx:
      return "mlx";
    case ModelFormat::kAuto:
      break;
  }
  return "auto";
}

absl::StatusOr<Precision> ParsePrecision(const std::string& s) {
  std::string v = absl::AsciiStrToLower(s);
  if (v == "float32") return Precision::kFp32;
  if (v == "float16") return Precision::kFp16;
  for (const auto& e : kPrecisions) {
    if (v == e.name) return e.precision;
  }
  if (v == "bf16" || v == "bfloat16") {
    return absl::InvalidArgumentError(
        "precision bf16 is not offered: ONNX Runtime's CPU kernels do not run BF16 MatMul, "
        "SimplifiedLayerNormalization or GroupQueryAttention, so the model would not load there; "
        "use fp16 or fp32 (GGUF --gguf-type BF16 keeps BF16 weights for llama.cpp)");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown precision '", s, "'; use fp32, fp16, int8 or int4"));
}

bool KeepEmbeddings(const Recipe& r) {
  return r.keep_embeddings.value_or(r.format != ModelFormat::kMlx);
}

int MlxBits(const Recipe& r) {
  if (r.bits != 0) return r.bits;
  return r.precision == Precision::kInt8 ? 8 : 4;
}

std::vector<std::string> MlxMixedRecipeNames() {
  return {"mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6"};
}

std::string MlxPrecisionName(const Recipe& r) {
  if (!r.mlx_recipe.empty()) return r.mlx_recipe;
  return absl::StrCat(MlxBits(r), "bit");
}

std::vector<std::string> MlxPrecisionNames() {
  std::vector<std::string> names;
  for (int bits : {2, 3, 4, 5, 6, 8}) names.push_back(absl::StrCat(bits, "bit"));
  for (std::string& n : MlxMixedRecipeNames()) names.push_back(std::move(n));
  return names;
}

namespace {

// The MLX-only fields are left at their defaults by other formats; an MLX
// recipe leaves the ONNX and GGUF knobs alone (they would change nothing).
absl::Status ValidateMlxFields(const Recipe& r) {
  const Recipe d;
  if (r.format != ModelFormat::kMlx) {
    for (const auto& [set, field] : {std::pair{r.bits != d.bits, "bits"},
                                     std::pair{r.group_size != d.group_size, "group_size"},
                                     std::pair{!r.mlx_recipe.empty(), "mlx_recipe"}}) {
      if (set) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, " applies to format mlx (MLX folders); ONNX INT4 uses block_size"));
      }
    }
    return absl::OkStatus();
  }
  switch (r.precision) {
    case Precision::kUnspecified:
      break;
    case Precision::kInt4:
    case Precision::kInt8:
      if (r.bits != 0 && r.bits != (r.precision == Precision::kInt8 ? 8 : 4)) {
        return absl::InvalidArgumentError(
            absl::StrCat("precision ", PrecisionName(r.precision), " and bits ", r.bits,
                         " disagree; for format mlx set one of them"));
      }
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "precision ", PrecisionName(r.precision),
          " does not apply to format mlx; MLX folders are quantized: set bits (2, 3, 4, 5, 6 "
          "or 8) or precision int4 / int8"));
  }
  switch (MlxBits(r)) {
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 8:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("bits ", r.bits, " is not supported; use 2, 3, 4, 5, 6 or 8"));
  }
  switch (r.group_size) {
    case 32:
    case 64:
    case 128:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("group_size ", r.group_size, " is not supported; use 32, 64 or 128"));
  }
  if (!r.mlx_recipe.empty()) {
    const std::vector<std::string> names = MlxMixedRecipeNames();
    if (std::find(names.begin(), names.end(), r.mlx_recipe) == names.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mlx_recipe '", r.mlx_recipe, "' is not known; use ", absl::StrJoin(names, ", ")));
    }
  }
  const std::pair<bool, const char*> onnx_or_gguf[] = {
      {!r.gguf_type.empty(), "gguf_type"},
      {!r.imatrix.empty(), "imatrix"},
      {!r.tensor_types.empty(), "tensor_types"},
      {!r.prune_layers.empty(), "prune_layers"},
      {r.keep_split || r.split_max_bytes > 0, "keep_split / split_max_bytes"},
      {r.block_size != d.block_size, "block_size"},
      {r.symmetric != d.symmetric, "symmetric"},
      {r.accuracy_level != d.accuracy_level, "accuracy_level"},
      {r.int4_format != d.int4_format, "int4_format"},
      {r.algorithm != d.algorithm, "algorithm"},
      {r.int8_mode != d.int8_mode, "int8_mode"},
      {r.int8_weight_type != d.int8_weight_type, "int8_weight_type"},
      {r.per_channel != d.per_channel, "per_channel"},
      {r.reduce_range != d.reduce_range, "reduce_range"},
      {!r.op_types.empty(), "op_types"},
      {r.lm_head != d.lm_head, "lm_head"},
      {r.min_tensor_elements != d.min_tensor_elements, "min_tensor_elements"},
      {r.int8_first_layers != 0 || r.int8_last_layers != 0, "int8_first_layers/int8_last_layers"},
      {!r.int8_regex.empty(), "int8_regex"},
      {r.embedding_op != d.embedding_op, "embedding_op"},
      {!r.lm_head_node.empty(), "lm_head_node"},
      {r.int8_embeddings, "int8_embeddings"},
      {r.force_fp16, "force_fp16"},
      {r.keep_io_types != d.keep_io_types, "keep_io_types"},
      {r.op_block_list.has_value(), "op_block_list"},
      {!r.node_block_list.empty(), "node_block_list"},
      {r.external_data != d.external_data, "external_data"},
  };
  for (const auto& [set, field] : onnx_or_gguf) {
    if (set) {
      return absl::InvalidArgumentError(
          absl::StrCat(field,
                       " does not apply to format mlx; MLX takes bits, group_size, mlx_recipe, "
                       "keep_embeddings and exclusions (exclude_regex, exclude_nodes)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRecipe(const Recipe& r) {
  if (r.precision == Precision::kUnspecified && r.gguf_type.empty() &&
      r.format != ModelFormat::kMlx) {
    return absl::InvalidArgumentError(
        "no target: set precision (fp32, fp16, int8 or int4), gguf_type (e.g. Q4_K_M), "
        "format mlx or preset");
  }
  if (auto st = ValidateMlxFields(r); !st.ok()) return st;
  if (r.format == ModelFormat::kOnnx && !r.gguf_type.empty()) {
    return absl::InvalidArgumentError("gguf_type applies to GGUF models, not ONNX");
  }
  if (r.format == ModelFormat::kGguf && r.gguf_type.empty()) {
    return absl::InvalidArgumentError("GGUF models need gguf_type (e.g. Q4_K_M, Q8_0, F16)");
  }
  switch (r.block_size) {
    case 16:
    case 32:
    case 64:
    case 128:
    case 256:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "block_size ", r.block_size, " is not supported; use 16, 32, 64, 128 or 256"));
  }
  if (r.accuracy_level && (*r.accuracy_level < 0 || *r.accuracy_level > 4)) {
    return absl::InvalidArgumentError(
        absl::StrCat("accuracy_level ", *r.accuracy_level, " is out of range; use 0 to 4"));
  }
  // Compiled here so a pattern RE2 refuses fails the submission, not the job.
  if (absl::StatusOr<NamePatterns> p = NamePatterns::Compile(r.exclude_regex, "exclude_regex");
      !p.ok()) {
    return p.status();
  }
  if (absl::StatusOr<NamePatterns> p = NamePatterns::Compile(r.int8_regex, "int8_regex");
      !p.ok()) {
    return p.status();
  }
  for (const auto& [value, field] : {std::pair<int, const char*>{r.int8_first_layers,
                                                                  "int8_first_layers"},
                                     {r.int8_last_layers, "int8_last_layers"}}) {
    if (value < 0 || value > 100000) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " ", value, " is out of range; use 0 to 100000"));
    }
  }
  if ((r.int8_first_layers > 0 || r.int8_last_layers > 0 || !r.int8_regex.empty()) &&
      r.precision != Precision::kInt4) {
    return absl::InvalidArgumentError(
        "int8_first_layers, int8_last_layers and int8_regex choose INT8 weights inside an INT4 "
        "model; set precision int4");
  }
  if (r.embedding_op == EmbeddingOp::kGatherBlockQuantized &&
      ((r.precision != Precision::kInt4 && r.precision != Precision::kInt8) ||
       KeepEmbeddings(r))) {
    return absl::InvalidArgumentError(
        "embedding_op gather_block_quantized applies to quantized embeddings: set precision "
        "int4 or int8 and keep_embeddings false");
  }
  if (r.force_fp16 && r.precision != Precision::kFp16) {
    return absl::InvalidArgumentError("force_fp16 applies to precision fp16");
  }
  if (r.int8_embeddings && (r.precision != Precision::kInt4 || KeepEmbeddings(r))) {
    return absl::InvalidArgumentError(
        "int8_embeddings makes the embeddings of an INT4 model INT8: set precision int4 and "
        "keep_embeddings false");
  }
  if (r.threads < 1 || r.threads > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads ", r.threads, " is out of range; use 1 to 256"));
  }
  if (r.algorithm == QuantAlgorithm::kSearch && r.precision != Precision::kInt4) {
    return absl::InvalidArgumentError("algorithm search applies to precision int4 only");
  }
  if (!r.model_name.empty()) {
    if (absl::Status st = ValidateModelName(r.model_name); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status ValidateModelName(absl::string_view name) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  bool ok = !name.empty() && name.size() <= 128 && alnum(name[0]);
  for (char c : name) ok = ok && (alnum(c) || c == '.' || c == '_' || c == '-');
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_name '", name,
        "' is not a plain folder name: use 1 to 128 letters, digits, '.', '_' and '-', "
        "starting with a letter or digit"));
  }
  return absl::OkStatus();
}

std::string CanonicalRecipe(const Recipe& r) {
  auto b = [](bool v) { return v ? "1" : "0"; };
  std::vector<std::string> parts = {
      absl::StrCat("format=", FormatName(r.format)),
      absl::StrCat("precision=", PrecisionName(r.precision)),
      absl::StrCat("keep_io_types=", b(r.keep_io_types)),
      absl::StrCat("op_block_list=",
                   r.op_block_list ? absl::StrJoin(*r.op_block_list, ",") : "<default>"),
      absl::StrCat("node_block_list=", absl::StrJoin(r.node_block_list, ",")),
      absl::StrCat("external_data=", static_cast<int>(r.external_data)),
      absl::StrCat("block_size=", r.block_size),
      absl::StrCat("symmetric=", b(r.symmetric)),
      // Unset keeps the text recipes had before the field could be unset.
      absl::StrCat("accuracy_level=", r.accuracy_level ? absl::StrCat("set:", *r.accuracy_level) : "0"),
      absl::StrCat("int4_format=", static_cast<int>(r.int4_format)),
      absl::StrCat("algorithm=", static_cast<int>(r.algorithm)),
      absl::StrCat("int8_mode=", static_cast<int>(r.int8_mode)),
      absl::StrCat("int8_weight_type=", static_cast<int>(r.int8_weight_type)),
      absl::StrCat("per_channel=", b(r.per_channel)),
      absl::StrCat("reduce_range=", b(r.reduce_range)),
      absl::StrCat("op_types=", absl::StrJoin(r.op_types, ",")),
      absl::StrCat("exclude_nodes=", absl::StrJoin(r.exclude_nodes, ",")),
      absl::StrCat("exclude_regex=", absl::StrJoin(r.exclude_regex, "\x1f")),
      absl::StrCat("keep_embeddings=", b(KeepEmbeddings(r))),
      absl::StrCat("lm_head=", r.lm_head ? absl::StrCat("set:", static_cast<int>(*r.lm_head)) : "0"),
      absl::StrCat("min_tensor_elements=", r.min_tensor_elements),
      absl::StrCat("gguf_type=", absl::AsciiStrToUpper(r.gguf_type)),
      absl::StrCat("leave_output_tensor=", b(r.leave_output_tensor)),
      absl::StrCat("output_tensor_type=", absl::AsciiStrToLower(r.output_tensor_type)),
      absl::StrCat("token_embedding_type=", absl::AsciiStrToLower(r.token_embedding_type)),
      absl::StrCat("pure=", b(r.pure)),
      absl::StrCat("allow_requantize=", b(r.allow_requantize)),
  };
  // A checkpoint's folder name is part of the output (general.name); absent
  // when unset, so recipes without it keep their canonical text.
  if (!r.model_name.empty()) parts.push_back(absl::StrCat("model_name=", r.model_name));
  // Importance-matrix fields only when used, so other recipes keep their text.
  if (!r.imatrix.empty()) parts.push_back(absl::StrCat("imatrix=", r.imatrix));
  if (!r.imatrix_include.empty()) {
    parts.push_back(absl::StrCat("imatrix_include=", absl::StrJoin(r.imatrix_include, "\x1f")));
  }
  if (!r.tensor_types.empty()) {
    parts.push_back(absl::StrCat("tensor_types=", absl::StrJoin(r.tensor_types, "\x1f")));
  }
  if (!r.prune_layers.empty()) {
    parts.push_back(absl::StrCat("prune_layers=", absl::StrJoin(r.prune_layers, ",")));
  }
  if (r.dry_run) parts.push_back("dry_run=1");
  if (r.keep_split) parts.push_back("keep_split=1");
  if (r.split_max_bytes > 0) parts.push_back(absl::StrCat("split_max_bytes=", r.split_max_bytes));
  if (!r.imatrix_exclude.empty()) {
    parts.push_back(absl::StrCat("imatrix_exclude=", absl::StrJoin(r.imatrix_exclude, "\x1f")));
  }
  // Absent when unset, so recipes without them keep their canonical text.
  if (r.int8_first_layers != 0 || r.int8_last_layers != 0) {
    parts.push_back(
        absl::StrCat("int8_layers=first:", r.int8_first_layers, ",last:", r.int8_last_layers));
  }
  if (!r.lm_head_node.empty()) parts.push_back(absl::StrCat("lm_head_node=", r.lm_head_node));
  if (r.int8_embeddings) parts.push_back("int8_embeddings=1");
  if (r.force_fp16) parts.push_back("force_fp16=1");
  if (r.embedding_op != EmbeddingOp::kGather) {
    parts.push_back(absl::StrCat("embedding_op=", static_cast<int>(r.embedding_op)));
  }
  if (!r.int8_regex.empty()) {
    parts.push_back(absl::StrCat("int8_regex=", absl::StrJoin(r.int8_regex, "\x1f")));
  }
  if (r.format == ModelFormat::kMlx) {
    // Only MLX recipes carry these, so every other recipe keeps its text.
    parts.push_back(absl::StrCat("bits=", MlxBits(r)));
    parts.push_back(absl::StrCat("group_size=", r.group_size));
    parts.push_back(absl::StrCat("mlx_recipe=", r.mlx_recipe));
  }
  // The report level changes the job's report, not its bytes: part of its
  // identity, absent at the default so other recipes keep their text.
  if (r.report_level != ReportLevel::kSummary) {
    parts.push_back(absl::StrCat("report_level=", static_cast<int>(r.report_level)));
  }
  // threads and preset do not change the output bytes: not part of identity.
  return absl::StrJoin(parts, ";");
}

namespace {

// A preset's recipe: the defaults, its name, then what `set` changes.
template <typename Set>
Recipe PresetRecipe(const char* name, Set set) {
  Recipe r;
  r.preset = name;
  set(r);
  return r;
}

}  // namespace

const std::vector<Preset>& Presets() {
  static const auto* const kPresets = new std::vector<Preset>{
      {"mobile-int4",
       "phones: ONNX INT4 MatMulNBits, block 32, symmetric, LM head INT8, accuracy level 4",
       PresetRecipe("mobile-int4",
                    [](Recipe& r) {
                      r.precision = Precision::kInt4;
                      r.block_size = 32;
                      r.symmetric = true;
                      r.accuracy_level = 4;
                      r.lm_head = LmHeadMode::kInt8;
                    }),
       {"precision", "block_size", "symmetric", "accuracy_level", "lm_head"}},
      {"iot-int4",
       "IoT boxes: ONNX INT4 MatMulNBits, block 128 (smallest file), symmetric, LM head INT8",
       PresetRecipe("iot-int4",
                    [](Recipe& r) {
                      r.precision = Precision::kInt4;
                      r.block_size = 128;
                      r.symmetric = true;
                      r.lm_head = LmHeadMode::kInt8;
                    }),
       {"precision", "block_size", "symmetric", "lm_head"}},
      {"openvino-int4",
       "Intel AI PCs with OpenVINO: ONNX INT4 QDQ (DequantizeLinear-21), block 128, symmetric; "
       "embeddings and LM head INT8 (NNCF's defaults for decoders)",
       PresetRecipe("openvino-int4",
                    [](Recipe& r) {
                      r.precision = Precision::kInt4;
                      r.int4_format = Int4Format::kQdq;
                      r.block_size = 128;
                      r.symmetric = true;
                      r.keep_embeddings = false;
                      r.int8_embeddings = true;
                      r.lm_head = LmHeadMode::kInt8;
                    }),
       {"precision", "int4_format", "block_size", "symmetric", "keep_embeddings",
        "int8_embeddings", "lm_head"}},
      {"aipc-int8",
       "AI PCs: ONNX INT8 dynamic quantization (MatMulInteger), per channel",
       PresetRecipe("aipc-int8",
                    [](Recipe& r) {
                      r.precision = Precision::kInt8;
                      r.int8_mode = Int8Mode::kDynamic;
                      r.per_channel = true;
                    }),
       {"precision", "int8_mode", "per_channel"}},
      {"aipc-fp16",
       "AI PCs with FP16 GPUs/NPUs: ONNX FP16, FP32 inputs/outputs kept",
       PresetRecipe("aipc-fp16", [](Recipe& r) { r.precision = Precision::kFp16; }),
       {"precision"}},
      {"aipc-fp32",
       "AI PCs, reference quality: ONNX FP32 (widens FP16/BF16 models)",
       PresetRecipe("aipc-fp32", [](Recipe& r) { r.precision = Precision::kFp32; }),
       {"precision"}},
      {"gguf-q4km",
       "llama.cpp on CPUs and phones: GGUF Q4_K_M",
       PresetRecipe("gguf-q4km",
                    [](Recipe& r) {
                      r.format = ModelFormat::kGguf;
                      r.gguf_type = "Q4_K_M";
                    }),
       {"format", "gguf_type"}},
      {"gguf-q8",
       "llama.cpp, near-lossless: GGUF Q8_0",
       PresetRecipe("gguf-q8",
                    [](Recipe& r) {
                      r.format = ModelFormat::kGguf;
                      r.gguf_type = "Q8_0";
                    }),
       {"format", "gguf_type"}},
  };
  return *kPresets;
}

absl::StatusOr<const Preset*> FindPreset(absl::string_view name) {
  for (const Preset& p : Presets()) {
    if (p.name == name) return &p;
  }
  std::vector<std::string> names;
  for (const Preset& p : Presets()) names.push_back(p.name);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown preset '", name, "'; known: ", absl::StrJoin(names, ", ")));
}

}  // namespace quantd::core
