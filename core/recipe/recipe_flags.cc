#include "quantd/core/recipe_flags.h"

#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"

namespace quantd::core {
namespace {

using Apply = std::function<absl::Status(Recipe*, const std::string&)>;

struct FlagSpec {
  const char* name;  // without leading dashes
  const char* arg;   // nullptr: boolean flag (no value)
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

template <typename E>
Apply Choice(const char* flag, E Recipe::*field, std::vector<std::pair<const char*, E>> choices,
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
      {"preset", "NAME", "start from a named preset (see `presets`); explicit flags override it",
       nullptr},
      {"format", "onnx|gguf|auto", "input/output format (default: detected from the input)",
       Choice("format", &Recipe::format,
              {{"auto", ModelFormat::kAuto}, {"onnx", ModelFormat::kOnnx},
               {"gguf", ModelFormat::kGguf}},
              "use onnx, gguf or auto")},
      {"precision", "fp32|fp16|int8|int4", "target precision (ONNX)",
       [](Recipe* r, const std::string& v) -> absl::Status {
         auto p = ParsePrecision(v);
         if (!p.ok()) return Bad("precision", v, "use fp32, fp16, int8 or int4");
         r->precision = *p;
         return absl::OkStatus();
       }},
      {"keep-io-types", nullptr, "keep graph inputs/outputs in their original float type (default)",
       Set(&Recipe::keep_io_types, true)},
      {"no-keep-io-types", nullptr, "convert graph inputs/outputs too",
       Set(&Recipe::keep_io_types, false)},
      {"op-block-list", "OP,OP", "op types kept in FP32 by fp16 conversion ('' = none; default: "
       "ops that need FP32, see README)",
       [](Recipe* r, const std::string& v) {
         r->op_block_list = List(v);
         return absl::OkStatus();
       }},
      {"node-block-list", "NAME,NAME", "node names kept in FP32 by fp16 conversion",
       Append(&Recipe::node_block_list)},
      {"external-data", "auto|always|never",
       "ONNX output weights in one '<output>.data' file (auto: when the input had external data or "
       "weights exceed 1 GiB)",
       Choice("external-data", &Recipe::external_data,
              {{"auto", ExternalDataMode::kAuto}, {"always", ExternalDataMode::kAlways},
               {"never", ExternalDataMode::kNever}},
              "use auto, always or never")},
      {"block-size", "N", "INT4 block size: 16, 32 (default), 64, 128 or 256",
       Int("block-size", &Recipe::block_size)},
      {"symmetric", nullptr, "INT4 symmetric quantization, no zero points (default)",
       Set(&Recipe::symmetric, true)},
      {"asymmetric", nullptr, "INT4 asymmetric quantization with zero points",
       Set(&Recipe::symmetric, false)},
      {"accuracy-level", "N", "MatMulNBits accuracy_level 0 (unset) to 4",
       Int("accuracy-level", &Recipe::accuracy_level)},
      {"int4-format", "matmulnbits|qdq", "INT4 operator form (default matmulnbits)",
       Choice("int4-format", &Recipe::int4_format,
              {{"matmulnbits", Int4Format::kMatMulNBits}, {"qdq", Int4Format::kQdq}},
              "use matmulnbits or qdq")},
      {"algorithm", "rtn|search", "INT4 scale choice: round-to-nearest (default) or error search",
       Choice("algorithm", &Recipe::algorithm,
              {{"rtn", QuantAlgorithm::kRtn}, {"search", QuantAlgorithm::kSearch}},
              "use rtn or search")},
      {"int8-mode", "weight-only|dynamic", "INT8 form: weight-only QDQ (default) or dynamic",
       Choice("int8-mode", &Recipe::int8_mode,
              {{"weight-only", Int8Mode::kWeightOnly}, {"dynamic", Int8Mode::kDynamic}},
              "use weight-only or dynamic")},
      {"int8-weight-type", "qint8|quint8", "INT8 weight type (default qint8, symmetric)",
       Choice("int8-weight-type", &Recipe::int8_weight_type,
              {{"qint8", Int8WeightType::kQInt8}, {"quint8", Int8WeightType::kQUInt8}},
              "use qint8 or quint8")},
      {"per-channel", nullptr, "INT8 per output channel scales", Set(&Recipe::per_channel, true)},
      {"no-per-channel", nullptr, "INT8 per tensor scales (default)",
       Set(&Recipe::per_channel, false)},
      {"reduce-range", nullptr, "INT8 7-bit weight range", Set(&Recipe::reduce_range, true)},
      {"op-types", "OP,OP", "op types to quantize (default MatMul for int4; MatMul,Gemm,Conv for int8)",
       Append(&Recipe::op_types)},
      {"exclude-nodes", "REGEX", "skip nodes whose whole name matches REGEX (repeatable)",
       [](Recipe* r, const std::string& v) {
         r->exclude_regex.push_back(v);
         return absl::OkStatus();
       }},
      {"exclude-node", "NAME,NAME", "skip these exact node names", Append(&Recipe::exclude_nodes)},
      {"keep-embeddings", nullptr, "keep Gather (embedding) weights float (default)",
       Set(&Recipe::keep_embeddings, true)},
      {"quantize-embeddings", nullptr, "quantize embedding weights too",
       Set(&Recipe::keep_embeddings, false)},
      {"lm-head", "float|int8|int4", "LM head (last MatMul to the logits) precision (default float)",
       Choice("lm-head", &Recipe::lm_head,
              {{"float", LmHeadMode::kFloat}, {"int8", LmHeadMode::kInt8},
               {"int4", LmHeadMode::kInt4}},
              "use float, int8 or int4")},
      {"min-tensor-elements", "N", "do not quantize weights with fewer elements",
       [](Recipe* r, const std::string& v) -> absl::Status {
         uint64_t n;
         if (!absl::SimpleAtoi(v, &n)) return Bad("min-tensor-elements", v, "expected an integer");
         r->min_tensor_elements = n;
         return absl::OkStatus();
       }},
      {"gguf-type", "TYPE", "GGUF file type: Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_S/M/L Q4_K_S/M "
       "Q5_K_S/M Q6_K F16 BF16 F32", Str(&Recipe::gguf_type)},
      {"leave-output-tensor", nullptr, "GGUF: do not quantize output.weight",
       Set(&Recipe::leave_output_tensor, true)},
      {"output-tensor-type", "TYPE", "GGUF: ggml type for output.weight",
       Str(&Recipe::output_tensor_type)},
      {"token-embedding-type", "TYPE", "GGUF: ggml type for token_embd.weight",
       Str(&Recipe::token_embedding_type)},
      {"pure", nullptr, "GGUF: one type for every tensor (no mixes)", Set(&Recipe::pure, true)},
      {"allow-requantize", nullptr, "GGUF: allow quantizing already-quantized tensors",
       Set(&Recipe::allow_requantize, true)},
      {"threads", "N",
       "threads for this conversion (quantd quantize: default hardware threads; a job: a "
       "hint the server caps)",
       Int("threads", &Recipe::threads)},
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
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value (", spec->arg, ")"));
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
    const Preset* found = nullptr;
    for (const Preset& p : Presets()) {
      if (p.name == preset) found = &p;
    }
    if (found == nullptr) {
      std::vector<std::string> names;
      for (const Preset& p : Presets()) names.push_back(p.name);
      return absl::InvalidArgumentError(absl::StrCat("unknown preset '", preset, "'; known: ",
                                                     absl::StrJoin(names, ", ")));
    }
    std::vector<std::string> unused;
    Recipe base;
    if (auto st = ParseRecipeFlags(found->flags, &base, &unused); !st.ok()) return st;
    base.preset = preset;
    *recipe = base;
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

std::vector<std::string> RecipeToFlags(const Recipe& r) {
  std::vector<std::string> f;
  const Recipe d;
  auto add = [&f](const char* name, std::string v = "") {
    f.push_back(absl::StrCat("--", name));
    if (!v.empty()) f.push_back(std::move(v));
  };
  if (r.format != d.format) add("format", FormatName(r.format));
  if (r.precision != d.precision) add("precision", PrecisionName(r.precision));
  if (!r.keep_io_types) add("no-keep-io-types");
  if (r.op_block_list) {
    f.push_back(absl::StrCat("--op-block-list=", absl::StrJoin(*r.op_block_list, ",")));
  }
  if (!r.node_block_list.empty()) add("node-block-list", absl::StrJoin(r.node_block_list, ","));
  static const char* kExt[] = {"auto", "always", "never"};
  if (r.external_data != d.external_data) add("external-data", kExt[static_cast<int>(r.external_data)]);
  if (r.block_size != d.block_size) add("block-size", absl::StrCat(r.block_size));
  if (!r.symmetric) add("asymmetric");
  if (r.accuracy_level != d.accuracy_level) add("accuracy-level", absl::StrCat(r.accuracy_level));
  if (r.int4_format == Int4Format::kQdq) add("int4-format", "qdq");
  if (r.algorithm == QuantAlgorithm::kSearch) add("algorithm", "search");
  if (r.int8_mode == Int8Mode::kDynamic) add("int8-mode", "dynamic");
  if (r.int8_weight_type == Int8WeightType::kQUInt8) add("int8-weight-type", "quint8");
  if (r.per_channel) add("per-channel");
  if (r.reduce_range) add("reduce-range");
  if (!r.op_types.empty()) add("op-types", absl::StrJoin(r.op_types, ","));
  for (const auto& re : r.exclude_regex) add("exclude-nodes", re);
  if (!r.exclude_nodes.empty()) add("exclude-node", absl::StrJoin(r.exclude_nodes, ","));
  if (!r.keep_embeddings) add("quantize-embeddings");
  static const char* kLm[] = {"float", "int8", "int4"};
  if (r.lm_head != d.lm_head) add("lm-head", kLm[static_cast<int>(r.lm_head)]);
  if (r.min_tensor_elements) add("min-tensor-elements", absl::StrCat(r.min_tensor_elements));
  if (!r.gguf_type.empty()) add("gguf-type", r.gguf_type);
  if (r.leave_output_tensor) add("leave-output-tensor");
  if (!r.output_tensor_type.empty()) add("output-tensor-type", r.output_tensor_type);
  if (!r.token_embedding_type.empty()) add("token-embedding-type", r.token_embedding_type);
  if (r.pure) add("pure");
  if (r.allow_requantize) add("allow-requantize");
  if (r.threads != d.threads) add("threads", absl::StrCat(r.threads));
  return f;
}

}  // namespace quantd::core
