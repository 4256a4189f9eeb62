#include "quantd/core/recipe.h"

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
    case ModelFormat::kOnnx: return "onnx";
    case ModelFormat::kGguf: return "gguf";
    case ModelFormat::kAuto: break;
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
  return absl::InvalidArgumentError(
      absl::StrCat("unknown precision '", s, "'; use fp32, fp16, int8 or int4"));
}

absl::Status ValidateRecipe(const Recipe& r) {
  if (r.precision == Precision::kUnspecified && r.gguf_type.empty()) {
    return absl::InvalidArgumentError(
        "no target: set precision (fp32, fp16, int8 or int4), gguf_type (e.g. Q4_K_M) or "
        "preset");
  }
  if (r.format == ModelFormat::kOnnx && !r.gguf_type.empty()) {
    return absl::InvalidArgumentError("gguf_type applies to GGUF models, not ONNX");
  }
  if (r.format == ModelFormat::kGguf && r.gguf_type.empty()) {
    return absl::InvalidArgumentError("GGUF models need gguf_type (e.g. Q4_K_M, Q8_0, F16)");
  }
  switch (r.block_size) {
    case 16: case 32: case 64: case 128: case 256: break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "block_size ", r.block_size, " is not supported; use 16, 32, 64, 128 or 256"));
  }
  if (r.accuracy_level < 0 || r.accuracy_level > 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        "accuracy_level ", r.accuracy_level, " is out of range; use 0 (unset) to 4"));
  }
  // Compiled here so a pattern RE2 refuses fails the submission, not the job.
  if (absl::StatusOr<NamePatterns> p = NamePatterns::Compile(r.exclude_regex, "exclude_regex");
      !p.ok()) {
    return p.status();
  }
  if (r.threads < 1 || r.threads > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads ", r.threads, " is out of range; use 1 to 256"));
  }
  if (r.algorithm == QuantAlgorithm::kSearch && r.precision != Precision::kInt4) {
    return absl::InvalidArgumentError("algorithm search applies to precision int4 only");
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
      absl::StrCat("accuracy_level=", r.accuracy_level),
      absl::StrCat("int4_format=", static_cast<int>(r.int4_format)),
      absl::StrCat("algorithm=", static_cast<int>(r.algorithm)),
      absl::StrCat("int8_mode=", static_cast<int>(r.int8_mode)),
      absl::StrCat("int8_weight_type=", static_cast<int>(r.int8_weight_type)),
      absl::StrCat("per_channel=", b(r.per_channel)),
      absl::StrCat("reduce_range=", b(r.reduce_range)),
      absl::StrCat("op_types=", absl::StrJoin(r.op_types, ",")),
      absl::StrCat("exclude_nodes=", absl::StrJoin(r.exclude_nodes, ",")),
      absl::StrCat("exclude_regex=", absl::StrJoin(r.exclude_regex, "\x1f")),
      absl::StrCat("keep_embeddings=", b(r.keep_embeddings)),
      absl::StrCat("lm_head=", static_cast<int>(r.lm_head)),
      absl::StrCat("min_tensor_elements=", r.min_tensor_elements),
      absl::StrCat("gguf_type=", absl::AsciiStrToUpper(r.gguf_type)),
      absl::StrCat("leave_output_tensor=", b(r.leave_output_tensor)),
      absl::StrCat("output_tensor_type=", absl::AsciiStrToLower(r.output_tensor_type)),
      absl::StrCat("token_embedding_type=", absl::AsciiStrToLower(r.token_embedding_type)),
      absl::StrCat("pure=", b(r.pure)),
      absl::StrCat("allow_requantize=", b(r.allow_requantize)),
  };
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
      {"aipc-int8", "AI PCs: ONNX INT8 dynamic quantization (MatMulInteger), per channel",
       PresetRecipe("aipc-int8",
                    [](Recipe& r) {
                      r.precision = Precision::kInt8;
                      r.int8_mode = Int8Mode::kDynamic;
                      r.per_channel = true;
                    }),
       {"precision", "int8_mode", "per_channel"}},
      {"aipc-fp16", "AI PCs with FP16 GPUs/NPUs: ONNX FP16, FP32 inputs/outputs kept",
       PresetRecipe("aipc-fp16", [](Recipe& r) { r.precision = Precision::kFp16; }),
       {"precision"}},
      {"aipc-fp32", "AI PCs, reference quality: ONNX FP32 (widens FP16/BF16 models)",
       PresetRecipe("aipc-fp32", [](Recipe& r) { r.precision = Precision::kFp32; }),
       {"precision"}},
      {"gguf-q4km", "llama.cpp on CPUs and phones: GGUF Q4_K_M",
       PresetRecipe("gguf-q4km",
                    [](Recipe& r) {
                      r.format = ModelFormat::kGguf;
                      r.gguf_type = "Q4_K_M";
                    }),
       {"format", "gguf_type"}},
      {"gguf-q8", "llama.cpp, near-lossless: GGUF Q8_0",
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
