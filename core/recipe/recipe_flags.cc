#include "quantd/core/recipe_flags.h"

#include <algorithm>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace quantd::core {
namespace {

using Apply = std::function<absl::Status(Recipe*, const std::string&)>;

struct FlagSpec {
  const char* name;   // without leading dashes
  const char* field;  // the Recipe field it sets, named as in quantd.v1.Recipe
  const char* arg;    // nullptr: boolean flag (no value)
  const char* help;
  Apply apply;
};

absl::Status Bad(const std::string& flag, const std::string& value, const char* allowed) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": invalid value '", value, "'; ", allowed));
}

std::vector<std::string> List(const std::string& v) {
  std::vector<std::string> out;
  for (absl::string_view s : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(s));
  }
  return out;
}

// The value type of a recipe field: E for E and for std::optional<E>.
template <typename F>
struct FieldValue {
  using type = F;
};
template <typename E>
struct FieldValue<std::optional<E>> {
  using type = E;
};

template <typename F>
Apply Choice(const char* flag, F Recipe::*field,
             std::vector<std::pair<const char*, typename FieldValue<F>::type>> choices,
             const char* allowed) {
  return [=](Recipe* r, const std::string& v) -> absl::Status {
    std::string lv = absl::AsciiStrToLower(v);
    for (const auto& [name, value] : choices) {
      if (lv == name) {
        r->*field = value;
        return absl::OkStatus();
      }
    }
    return Bad(flag, v, allowed);
  };
}

Apply Int(const char* flag, int Recipe::*field) {
  return [=](Recipe* r, const std::string& v) -> absl::Status {
    int n;
    if (!absl::SimpleAtoi(v, &n)) return Bad(flag, v, "expected an integer");
    r->*field = n;
    return absl::OkStatus();
  };
}

Apply Int(const char* flag, std::optional<int> Recipe::*field) {
  return [=](Recipe* r, const std::string& v) -> absl::Status {
    int n;
    if (!absl::SimpleAtoi(v, &n)) return Bad(flag, v, "expected an integer");
    r->*field = n;
    return absl::OkStatus();
  };
}

Apply Set(bool Recipe::*field, bool value) {
  return [=](Recipe* r, const std::string&) {
    r->*field = value;
    return absl::OkStatus();
  };
}

Apply Str(std::string Recipe::*field) {
  return [=](Recipe* r, const std::string& v) {
    r->*field = v;
    return absl::OkStatus();
  };
}

Apply Append(std::vector<std::string> Recipe::*field) {
  return [=](Recipe* r, const std::string& v) {
    for (auto& s : List(v)) (r->*field).push_back(s);
    return absl::OkStatus();
  };
}

const std::vector<FlagSpec>& Flags() {
  static const auto* const kFlags = new std::vector<FlagSpec>{
      {"preset", "preset", "NAME",
       "start from a named preset (see `presets`); explicit flags override it", nullptr},
      {"format", "format", "onnx|gguf|mlx|auto",
       "output format (default: detected from the input; mlx: an Apple MLX folder from a "
       "checkpoint folder)",
       Choice("format", &Recipe::format,
              {{"auto", ModelFormat::kAuto},
               {"onnx", ModelFormat::kOnnx},
               {"gguf", ModelFormat::kGguf},
               {"mlx", ModelFormat::kMlx}},
              "use onnx, gguf, mlx or auto")},
      {"precision", "precision", "fp32|fp16|int8|int4",
       "target precision (ONNX; for MLX int4/int8 mean --bits 4/8)",
       [](Recipe* r, const std::string& v) -> absl::Status {
         auto p = ParsePrecision(v);
         if (!p.ok()) return Bad("precision", v, "use fp32, fp16, int8 or int4");
         r->precision = *p;
         return absl::OkStatus();
       }},
      {"keep-io-types", "keep_io_types", nullptr,
       "keep graph inputs/outputs in their original float type (default)",
       Set(&Recipe::keep_io_types, true)},
      {"no-keep-io-types", "keep_io_types", nullptr, "convert graph inputs/outputs too",
       Set(&Recipe::keep_io_types, false)},
      {"op-block-list", "op_block_list", "OP,OP",
       "op types kept in FP32 by fp16 conversion ('' = none; default: "
       "ops that need FP32, see docs/onnx.md)",
       [](Recipe* r, const std::string& v) {
         r->op_block_list = List(v);
         return absl::OkStatus();
       }},
      {"node-block-list", "node_block_list", "NAME,NAME",
       "node names kept in FP32 by fp16 conversion", Append(&Recipe::node_block_list)},
      {"external-data", "external_data", "auto|always|never",
       "ONNX output weights in one '<output>.data' file (auto: when the input had external data or "
       "weights exceed 1 GiB)",
       Choice("external-data", &Recipe::external_data,
              {{"auto", ExternalDataMode::kAuto},
               {"always", ExternalDataMode::kAlways},
               {"never", ExternalDataMode::kNever}},
              "use auto, always or never")},
      {"block-size", "block_size", "N", "INT4 block size: 16, 32 (default), 64, 128 or 256",
       Int("block-size", &Recipe::block_size)},
      {"symmetric", "symmetric", nullptr, "INT4 symmetric quantization, no zero points (default)",
       Set(&Recipe::symmetric, true)},
      {"asymmetric", "symmetric", nullptr, "INT4 asymmetric quantization with zero points",
       Set(&Recipe::symmetric, false)},
      {"accuracy-level", "accuracy_level", "N", "MatMulNBits accuracy_level 0 to 4",
       Int("accuracy-level", &Recipe::accuracy_level)},
      {"int4-format", "int4_format", "matmulnbits|qdq", "INT4 operator form (default matmulnbits)",
       Choice("int4-format", &Recipe::int4_format,
              {{"matmulnbits", Int4Format::kMatMulNBits}, {"qdq", Int4Format::kQdq}},
              "use matmulnbits or qdq")},
      {"algorithm", "algorithm", "rtn|search",
       "INT4 scale choice: round-to-nearest (default) or error search",
       Choice("algorithm", &Recipe::algorithm,
              {{"rtn", QuantAlgorithm::kRtn}, {"search", QuantAlgorithm::kSearch}},
              "use rtn or search")},
      {"int8-mode", "int8_mode", "weight-only|dynamic",
       "INT8 form: weight-only QDQ (default) or dynamic",
       Choice("int8-mode", &Recipe::int8_mode,
              {{"weight-only", Int8Mode::kWeightOnly},
               {"dynamic", Int8Mode::kDynamic},
               {"matmulnbits", Int8Mode::kMatMulNBits}},
              "use weight-only or dynamic")},
      {"int8-weight-type", "int8_weight_type", "qint8|quint8",
       "INT8 weight type (default qint8, symmetric)",
       Choice("int8-weight-type", &Recipe::int8_weight_type,
              {{"qint8", Int8WeightType::kQInt8}, {"quint8", Int8WeightType::kQUInt8}},
              "use qint8 or quint8")},
      {"per-channel", "per_channel", nullptr, "INT8 per output channel scales",
       Set(&Recipe::per_channel, true)},
      {"no-per-channel", "per_channel", nullptr, "INT8 per tensor scales (default)",
       Set(&Recipe::per_channel, false)},
      {"reduce-range", "reduce_range", nullptr, "INT8 7-bit weight range",
       Set(&Recipe::reduce_range, true)},
      {"op-types", "op_types", "OP,OP",
       "op types to quantize (default MatMul for int4; MatMul,Gemm,Conv for int8)",
       Append(&Recipe::op_types)},
      {"exclude-nodes", "exclude_regex", "REGEX",
       "skip nodes whose whole name matches REGEX (repeatable)",
       [](Recipe* r, const std::string& v) {
         r->exclude_regex.push_back(v);
         return absl::OkStatus();
       }},
      {"exclude-node", "exclude_nodes", "NAME,NAME", "skip these exact node names",
       Append(&Recipe::exclude_nodes)},
      {"keep-embeddings", "keep_embeddings", nullptr,
       "keep embedding weights float (default for ONNX; MLX quantizes them unless given)",
       [](Recipe* r, const std::string&) {
         r->keep_embeddings = true;
         return absl::OkStatus();
       }},
      {"quantize-embeddings", "keep_embeddings", nullptr,
       "quantize embedding weights too (default for MLX)",
       [](Recipe* r, const std::string&) {
         r->keep_embeddings = false;
         return absl::OkStatus();
       }},
      {"lm-head", "lm_head", "float|int8|int4",
       "LM head (last MatMul to the logits) precision (default float)",
       Choice("lm-head", &Recipe::lm_head,
              {{"float", LmHeadMode::kFloat},
               {"int8", LmHeadMode::kInt8},
               {"int4", LmHeadMode::kInt4}},
              "use float, int8 or int4")},
      {"min-tensor-elements", "min_tensor_elements", "N",
       "do not quantize weights with fewer elements",
       [](Recipe* r, const std::string& v) -> absl::Status {
         uint64_t n;
         if (!absl::SimpleAtoi(v, &n)) return Bad("min-tensor-elements", v, "expected an integer");
         r->min_tensor_elements = n;
         return absl::OkStatus();
       }},
      {"int8-layers", "int8_first_layers", "first:N,last:M",
       "INT4 only: keep the first N and/or last M decoder layers at INT8 (per-channel QDQ); "
       "repeatable, a later key overrides",
       [](Recipe* r, const std::string& v) -> absl::Status {
         int first = r->int8_first_layers, last = r->int8_last_layers;
         for (const std::string& part : List(v)) {
           std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits(':', 1));
           int n;
           if (!absl::SimpleAtoi(kv.second, &n) || n < 0) {
             return Bad("int8-layers", v, "use first:N,last:M (either or both, N, M >= 0)");
           }
           if (kv.first == "first") {
             first = n;
           } else if (kv.first == "last") {
             last = n;
           } else {
             return Bad("int8-layers", v, "use first:N,last:M (either or both, N, M >= 0)");
           }
         }
         r->int8_first_layers = first;
         r->int8_last_layers = last;
         return absl::OkStatus();
       }},
      {"force-fp16", "force_fp16", nullptr,
       "FP16: convert nodes with out-of-range constants anyway (clamped to 65504) instead of "
       "keeping them FP32",
       Set(&Recipe::force_fp16, true)},
      {"int8-embeddings", "int8_embeddings", nullptr,
       "INT4 with --quantize-embeddings: embeddings INT8 per row instead of INT4",
       Set(&Recipe::int8_embeddings, true)},
      {"lm-head-node", "lm_head_node", "NAME",
       "the LM head's node name (default: found from the logits output or by structure)",
       Str(&Recipe::lm_head_node)},
      {"embedding-op", "embedding_op", "gather|gatherblockquantized",
       "quantized embeddings: DequantizeLinear + Gather (default) or ORT's "
       "com.microsoft.GatherBlockQuantized (4-bit, or 8-bit for INT8 embeddings)",
       Choice("embedding-op", &Recipe::embedding_op,
              {{"gather", EmbeddingOp::kGather},
               {"gatherblockquantized", EmbeddingOp::kGatherBlockQuantized}},
              "use gather or gatherblockquantized")},
      {"int8-nodes", "int8_regex", "REGEX",
       "INT4 only: keep nodes whose whole name matches REGEX at INT8 (repeatable)",
       [](Recipe* r, const std::string& v) {
         r->int8_regex.push_back(v);
         return absl::OkStatus();
       }},
      {"gguf-type", "gguf_type", "TYPE",
       // Every name core::gguf::ParseFileType accepts (RecipeTest checks it).
       "GGUF file type: Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL IQ4_XS Q2_K Q2_K_S Q3_K_S/M/L "
       "Q4_K_S/M Q5_K_S/M Q6_K IQ3_M IQ3_S IQ3_XS IQ3_XXS IQ2_M IQ2_S IQ2_XS IQ2_XXS IQ1_M IQ1_S "
       "TQ1_0 TQ2_0 F16 BF16 F32 (Q3_K/Q4_K/Q5_K: the _M mixes; an importance matrix is "
       "needed for IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S Q2_K_S)",
       Str(&Recipe::gguf_type)},
      {"leave-output-tensor", "leave_output_tensor", nullptr, "GGUF: do not quantize output.weight",
       Set(&Recipe::leave_output_tensor, true)},
      {"output-tensor-type", "output_tensor_type", "TYPE", "GGUF: ggml type for output.weight",
       Str(&Recipe::output_tensor_type)},
      {"token-embedding-type", "token_embedding_type", "TYPE",
       "GGUF: ggml type for token_embd.weight", Str(&Recipe::token_embedding_type)},
      {"pure", "pure", nullptr, "GGUF: one type for every tensor (no mixes)",
       Set(&Recipe::pure, true)},
      {"allow-requantize", "allow_requantize", nullptr,
       "GGUF: allow quantizing already-quantized tensors", Set(&Recipe::allow_requantize, true)},
      {"imatrix", "imatrix", "FILE",
       "GGUF: importance matrix from llama-imatrix (legacy .dat or GGUF)", Str(&Recipe::imatrix)},
      {"include-weights", "imatrix_include", "NAME",
       "GGUF: use the importance matrix only for tensors whose name contains NAME (repeatable)",
       [](Recipe* r, const std::string& v) {
         r->imatrix_include.push_back(v);
         return absl::OkStatus();
       }},
      {"exclude-weights", "imatrix_exclude", "NAME",
       "GGUF: do not use the importance matrix for tensors whose name contains NAME "
       "(repeatable)",
       [](Recipe* r, const std::string& v) {
         r->imatrix_exclude.push_back(v);
         return absl::OkStatus();
       }},
      {"tensor-type", "tensor_types", "REGEX=TYPE",
       "GGUF: ggml TYPE for tensors whose name REGEX finds (repeatable; the first that changes "
       "a tensor wins)",
       [](Recipe* r, const std::string& v) {
         r->tensor_types.push_back(v);
         return absl::OkStatus();
       }},
      {"prune-layers", "prune_layers", "N,N",
       "GGUF: remove these blocks (layers) and renumber the rest",
       [](Recipe* r, const std::string& v) -> absl::Status {
         for (absl::string_view part : absl::StrSplit(v, ',', absl::SkipEmpty())) {
           int n;
           if (!absl::SimpleAtoi(part, &n) || n < 0) {
             return Bad("prune-layers", v, "expected block numbers like 3,4,10");
           }
           r->prune_layers.push_back(n);
         }
         return absl::OkStatus();
       }},
      {"keep-split", "keep_split", nullptr,
       "GGUF: write the output in the input's split parts (<out>-00001-of-0000N.gguf)",
       Set(&Recipe::keep_split, true)},
      {"split-max-size", "split_max_bytes", "N[K|M|G]",
       "GGUF: split the output into parts of at most N bytes of tensor data (K/M/G: 10^3/6/9, "
       "as llama-gguf-split)",
       [](Recipe* r, const std::string& v) -> absl::Status {
         uint64_t mult = 1;
         std::string digits = v;
         if (!digits.empty() &&
             (digits.back() == 'K' || digits.back() == 'M' || digits.back() == 'G')) {
           mult = digits.back() == 'K' ? 1000 : digits.back() == 'M' ? 1000000 : 1000000000;
           digits.pop_back();
         }
         uint64_t n;
         if (!absl::SimpleAtoi(digits, &n) || n == 0 || n > (uint64_t{1} << 50) / mult) {
           return Bad("split-max-size", v, "expected a size like 2G, 500M or 1000000");
         }
         r->split_max_bytes = n * mult;
         return absl::OkStatus();
       }},
      {"dry-run", "dry_run", nullptr,
       "GGUF (llama-quantize types): print the per-tensor plan and the output size; write nothing",
       Set(&Recipe::dry_run, true)},
      {"bits", "bits", "N", "MLX: bits per weight, 2, 3, 4 (default), 5, 6 or 8",
       Int("bits", &Recipe::bits)},
      {"group-size", "group_size", "N", "MLX: weights per scale and bias, 32, 64 (default) or 128",
       Int("group-size", &Recipe::group_size)},
      {"mlx-recipe", "mlx_recipe", "NAME",
       "MLX mixed bits as mlx_lm.convert --quant-predicate: mixed_2_6, mixed_3_4, mixed_3_6, "
       "mixed_4_6",
       Str(&Recipe::mlx_recipe)},
      {"threads", "threads", "N",
       "threads for this conversion (quantd quantize: default hardware threads; a job: a "
       "hint the server caps)",
       Int("threads", &Recipe::threads)},
      {"report-level", "report_level", "none|summary|full",
       "quality figures: summary (default; output error on a sampled subset of columns), "
       "full (every column) or none",
       Choice("report-level", &Recipe::report_level,
              {{"summary", ReportLevel::kSummary},
               {"none", ReportLevel::kNone},
               {"full", ReportLevel::kFull}},
              "use none, summary or full")},
      {"model-name", "model_name", "NAME",
       "checkpoint folders: the name general.name is derived from (default: the folder's name)",
       Str(&Recipe::model_name)},
  };
  return *kFlags;
}

const FlagSpec* Find(absl::string_view name) {
  for (const FlagSpec& f : Flags()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

}  // namespace

absl::Status ParseRecipeFlags(const std::vector<std::string>& args, Recipe* recipe,
                              std::vector<std::string>* rest) {
  struct Item {
    const FlagSpec* spec;
    std::string value;
  };
  std::vector<Item> items;
  std::string preset;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!absl::StartsWith(a, "--")) {
      rest->push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const FlagSpec* spec = Find(name);
    if (spec == nullptr) {
      rest->push_back(a);
      continue;
    }
    if (spec->arg != nullptr && !has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value (", spec->arg, ")"));
      }
      value = args[++i];
    } else if (spec->arg == nullptr && has_value) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
    }
    if (name == "preset") {
      preset = value;
    } else {
      items.push_back({spec, value});
    }
  }
  if (!preset.empty()) {
    absl::StatusOr<const Preset*> found = FindPreset(preset);
    if (!found.ok()) return found.status();
    *recipe = (*found)->recipe;
  }
  for (const Item& item : items) {
    if (auto st = item.spec->apply(recipe, item.value); !st.ok()) return st;
  }
  return absl::OkStatus();
}

std::string RecipeFlagsHelp() {
  std::string out;
  for (const FlagSpec& f : Flags()) {
    std::string left = absl::StrCat("  --", f.name, f.arg ? absl::StrCat(" ", f.arg) : "");
    absl::StrAppendFormat(&out, "%-36s %s\n", left, f.help);
  }
  return out;
}

std::vector<std::string> FieldFlags(const Recipe& r, absl::string_view field) {
  std::vector<std::string> f;
  auto add = [&f](const char* name, std::string v = "") {
    f.push_back(absl::StrCat("--", name));
    if (!v.empty()) f.push_back(std::move(v));
  };
  auto on_off = [&add](bool v, const char* on, const char* off) {
    if (v && on != nullptr) add(on);
    if (!v && off != nullptr) add(off);
  };
  static const char* kExt[] = {"auto", "always", "never"};
  static const char* kLm[] = {"float", "int8", "int4"};
  if (field == "format") {
    add("format", FormatName(r.format));
  } else if (field == "precision") {
    add("precision", PrecisionName(r.precision));
  } else if (field == "keep_io_types") {
    on_off(r.keep_io_types, "keep-io-types", "no-keep-io-types");
  } else if (field == "op_block_list") {
    if (r.op_block_list) {
      f.push_back(absl::StrCat("--op-block-list=", absl::StrJoin(*r.op_block_list, ",")));
    }
  } else if (field == "node_block_list") {
    if (!r.node_block_list.empty()) add("node-block-list", absl::StrJoin(r.node_block_list, ","));
  } else if (field == "external_data") {
    add("external-data", kExt[static_cast<int>(r.external_data)]);
  } else if (field == "block_size") {
    add("block-size", absl::StrCat(r.block_size));
  } else if (field == "symmetric") {
    on_off(r.symmetric, "symmetric", "asymmetric");
  } else if (field == "accuracy_level") {
    if (r.accuracy_level) add("accuracy-level", absl::StrCat(*r.accuracy_level));
  } else if (field == "int4_format") {
    add("int4-format", r.int4_format == Int4Format::kQdq ? "qdq" : "matmulnbits");
  } else if (field == "algorithm") {
    add("algorithm", r.algorithm == QuantAlgorithm::kSearch ? "search" : "rtn");
  } else if (field == "int8_mode") {
    add("int8-mode", r.int8_mode == Int8Mode::kDynamic       ? "dynamic"
                     : r.int8_mode == Int8Mode::kMatMulNBits ? "matmulnbits"
                                                             : "weight-only");
  } else if (field == "int8_weight_type") {
    add("int8-weight-type", r.int8_weight_type == Int8WeightType::kQUInt8 ? "quint8" : "qint8");
  } else if (field == "per_channel") {
    on_off(r.per_channel, "per-channel", "no-per-channel");
  } else if (field == "reduce_range") {
    on_off(r.reduce_range, "reduce-range", nullptr);
  } else if (field == "op_types") {
    if (!r.op_types.empty()) add("op-types", absl::StrJoin(r.op_types, ","));
  } else if (field == "exclude_regex") {
    for (const auto& re : r.exclude_regex) add("exclude-nodes", re);
  } else if (field == "exclude_nodes") {
    if (!r.exclude_nodes.empty()) add("exclude-node", absl::StrJoin(r.exclude_nodes, ","));
  } else if (field == "keep_embeddings") {
    if (r.keep_embeddings) on_off(*r.keep_embeddings, "keep-embeddings", "quantize-embeddings");
  } else if (field == "lm_head") {
    if (r.lm_head) add("lm-head", kLm[static_cast<int>(*r.lm_head)]);
  } else if (field == "min_tensor_elements") {
    add("min-tensor-elements", absl::StrCat(r.min_tensor_elements));
  } else if (field == "int8_first_layers") {
    if (r.int8_first_layers != 0 || r.int8_last_layers != 0) {
      add("int8-layers",
          absl::StrCat("first:", r.int8_first_layers, ",last:", r.int8_last_layers));
    }
  } else if (field == "force_fp16") {
    on_off(r.force_fp16, "force-fp16", nullptr);
  } else if (field == "int8_embeddings") {
    on_off(r.int8_embeddings, "int8-embeddings", nullptr);
  } else if (field == "lm_head_node") {
    if (!r.lm_head_node.empty()) add("lm-head-node", r.lm_head_node);
  } else if (field == "embedding_op") {
    add("embedding-op",
        r.embedding_op == EmbeddingOp::kGatherBlockQuantized ? "gatherblockquantized" : "gather");
  } else if (field == "int8_regex") {
    for (const auto& re : r.int8_regex) add("int8-nodes", re);
  } else if (field == "gguf_type") {
    if (!r.gguf_type.empty()) add("gguf-type", r.gguf_type);
  } else if (field == "leave_output_tensor") {
    on_off(r.leave_output_tensor, "leave-output-tensor", nullptr);
  } else if (field == "output_tensor_type") {
    if (!r.output_tensor_type.empty()) add("output-tensor-type", r.output_tensor_type);
  } else if (field == "token_embedding_type") {
    if (!r.token_embedding_type.empty()) add("token-embedding-type", r.token_embedding_type);
  } else if (field == "pure") {
    on_off(r.pure, "pure", nullptr);
  } else if (field == "allow_requantize") {
    on_off(r.allow_requantize, "allow-requantize", nullptr);
  } else if (field == "imatrix") {
    if (!r.imatrix.empty()) add("imatrix", r.imatrix);
  } else if (field == "imatrix_include") {
    for (const auto& v : r.imatrix_include) add("include-weights", v);
  } else if (field == "imatrix_exclude") {
    for (const auto& v : r.imatrix_exclude) add("exclude-weights", v);
  } else if (field == "tensor_types") {
    for (const auto& v : r.tensor_types) add("tensor-type", v);
  } else if (field == "prune_layers") {
    if (!r.prune_layers.empty()) add("prune-layers", absl::StrJoin(r.prune_layers, ","));
  } else if (field == "dry_run") {
    on_off(r.dry_run, "dry-run", nullptr);
  } else if (field == "keep_split") {
    on_off(r.keep_split, "keep-split", nullptr);
  } else if (field == "split_max_bytes") {
    if (r.split_max_bytes > 0) add("split-max-size", absl::StrCat(r.split_max_bytes));
  } else if (field == "bits") {
    if (r.bits != 0) add("bits", absl::StrCat(r.bits));
  } else if (field == "group_size") {
    add("group-size", absl::StrCat(r.group_size));
  } else if (field == "mlx_recipe") {
    if (!r.mlx_recipe.empty()) add("mlx-recipe", r.mlx_recipe);
  } else if (field == "threads") {
    add("threads", absl::StrCat(r.threads));
  } else if (field == "report_level") {
    add("report-level", r.report_level == ReportLevel::kNone   ? "none"
                        : r.report_level == ReportLevel::kFull ? "full"
                                                               : "summary");
  } else if (field == "model_name") {
    if (!r.model_name.empty()) add("model-name", r.model_name);
  }
  return f;
}

std::vector<std::string> PresetFlags(const Preset& preset) {
  std::vector<std::string> f;
  for (const std::string& field : preset.fields) {
    for (std::string& flag : FieldFlags(preset.recipe, field)) f.push_back(std::move(flag));
  }
  return f;
}

std::vector<std::string> RecipeToFlags(const Recipe& r) {
  // Field order as the flags were always written; `preset` is informational.
  static constexpr const char* kFields[] = {
      "format",
      "precision",
      "keep_io_types",
      "op_block_list",
      "node_block_list",
      "external_data",
      "block_size",
      "symmetric",
      "accuracy_level",
      "int4_format",
      "algorithm",
      "int8_mode",
      "int8_weight_type",
      "per_channel",
      "reduce_range",
      "op_types",
      "exclude_regex",
      "exclude_nodes",
      "keep_embeddings",
      "lm_head",
      "min_tensor_elements",
      "lm_head_node",
      "int8_embeddings",
      "force_fp16",
      "embedding_op",
      "int8_first_layers",
      "int8_regex",
      "gguf_type",
      "leave_output_tensor",
      "output_tensor_type",
      "token_embedding_type",
      "pure",
      "allow_requantize",
      "imatrix",
      "imatrix_include",
      "imatrix_exclude",
      "tensor_types",
      "prune_layers",
      "dry_run",
      "keep_split",
      "split_max_bytes",
      "bits",
      "group_size",
      "mlx_recipe",
      "threads",
      "report_level",
      "model_name",
  };
  const Recipe d;
  std::vector<std::string> f;
  for (const char* field : kFields) {
    std::vector<std::string> mine = FieldFlags(r, field);
    if (mine == FieldFlags(d, field)) continue;  // the default: no flag needed
    for (std::string& flag : mine) f.push_back(std::move(flag));
  }
  return f;
}

std::vector<std::string> FlagsForField(absl::string_view field) {
  std::vector<std::string> flags;
  for (const FlagSpec& f : Flags()) {
    if (field == f.field) flags.push_back(absl::StrCat("--", f.name));
  }
  return flags;
}

std::string WithFlagHint(absl::string_view message) {
  // Words made of [a-z0-9_]; a word right after "--" is part of a flag
  // already and needs no hint.
  std::vector<std::string> fields;
  size_t i = 0;
  while (i < message.size()) {
    auto is_word = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    };
    if (!is_word(message[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < message.size() && is_word(message[j])) ++j;
    // A word glued to letters of other cases ("Recipe", "threads2") is not a field.
    const bool bounded =
        (i == 0 || !absl::ascii_isalpha(static_cast<unsigned char>(message[i - 1]))) &&
        (j == message.size() || !absl::ascii_isalpha(static_cast<unsigned char>(message[j])));
    const bool in_flag = i >= 2 && message.substr(i - 2, 2) == "--";
    std::string word(message.substr(i, j - i));
    if (bounded && !in_flag && !FlagsForField(word).empty() &&
        std::find(fields.begin(), fields.end(), word) == fields.end()) {
      fields.push_back(word);
    }
    i = j;
  }
  if (fields.empty()) return std::string(message);
  std::vector<std::string> hints;
  for (const std::string& field : fields) {
    hints.push_back(absl::StrCat(field, ": ", absl::StrJoin(FlagsForField(field), "/")));
  }
  return absl::StrCat(message, " [flags: ", absl::StrJoin(hints, ", "), "]");
}

}  // namespace quantd::core
