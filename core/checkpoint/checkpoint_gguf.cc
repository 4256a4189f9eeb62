#include "quantd/core/checkpoint/checkpoint_gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/finite.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/checkpoint/model_name.h"
#include "quantd/core/checkpoint/tokenizer_gguf.h"
#include "quantd/core/gguf/gguf_run.h"
#include "quantd/core/gguf/quants.h"

namespace quantd::core::checkpoint {
namespace {

namespace fs = std::filesystem;
using gguf::GgmlType;
using gguf::GgufKv;
using gguf::GgufValueType;
using nlohmann::json;

constexpr uint32_t kQuantizationVersion = 2;  // GGML_QUANT_VERSION
constexpr int64_t kChunkElements = 1 << 16;   // rows converted per write

// --- metadata values, encoded as GgufKv::raw ---------------------------------

template <class T>
GgufKv Scalar(std::string key, GgufValueType type, T v) {
  GgufKv kv{std::move(key), type, std::string(sizeof(T), '\0')};
  std::memcpy(kv.raw.data(), &v, sizeof(T));
  return kv;
}
GgufKv U32(std::string key, uint32_t v) {
  return Scalar(std::move(key), GgufValueType::kUint32, v);
}
GgufKv F32(std::string key, float v) { return Scalar(std::move(key), GgufValueType::kFloat32, v); }

// Tensor names the converter drops without looking.
bool Ignored(absl::string_view name) {
  return absl::EndsWith(name, ".attention.masked_bias") ||
         absl::EndsWith(name, ".attention.bias") || absl::EndsWith(name, ".rotary_emb.inv_freq");
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::Status RopeError(const Architecture& arch, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("config.json: rope_scaling ", what, " (", arch.hf_class, ")"));
}

struct RopeScaling {
  std::vector<GgufKv> early_kvs;    // written before general.type (phi3 attention factor)
  std::vector<GgufKv> kvs;          // the rope.scaling.* rule's keys
  std::vector<float> long_factors;  // phi3 LongRoPE tensors
  std::vector<float> short_factors;
};

absl::StatusOr<std::vector<float>> FactorList(const Architecture& arch, const json& rs,
                                              const char* key) {
  auto it = rs.find(key);
  if (it == rs.end() || !it->is_array())
    return RopeError(arch, absl::StrCat("needs a '", key, "' list"));
  std::vector<float> out;
  for (const json& v : *it) {
    if (!v.is_number()) return RopeError(arch, absl::StrCat("'", key, "' holds a non-number"));
    out.push_back(static_cast<float>(v.get<double>()));  // torch.tensor(float32) rounding
  }
  return out;
}

absl::StatusOr<RopeScaling> ReadRopeScaling(const Architecture& arch, const json& config,
                                            const Hparams& h, int64_t rope_dims) {
  RopeScaling out;
  auto it = config.find("rope_scaling");
  if (it == config.end() || it->is_null()) return out;
  if (!it->is_object()) return RopeError(arch, "is not an object");
  const json& rs = *it;
  auto str = [&](const char* key) -> std::string {
    auto k = rs.find(key);
    return k != rs.end() && k->is_string() ? k->get<std::string>() : std::string();
  };
  auto number = [&](const char* key) -> std::optional<double> {
    auto k = rs.find(key);
    if (k == rs.end() || !k->is_number()) return std::nullopt;
    return k->get<double>();
  };
  switch (arch.rope_scaling) {
    case RopeScalingRule::kPhi3: {
      const std::string type = absl::AsciiStrToLower(str("type"));
      if (type.empty()) return RopeError(arch, "has no 'type'");
      QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> max_pos,
                              ConfigInt(config, "max_position_embeddings"));
      QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> orig,
                              ConfigInt(config, "original_max_position_embeddings"));
      if (!max_pos || !orig || *orig <= 0) {
        return RopeError(arch,
                         "needs max_position_embeddings and original_max_position_embeddings");
      }
      const double scale = static_cast<double>(*max_pos) / static_cast<double>(*orig);
      double attn_factor;
      if (type == "su" || type == "longrope") {
        attn_factor = scale > 1.0
                          ? std::sqrt(1.0 + std::log(scale) / std::log(static_cast<double>(*orig)))
                          : 1.0;
      } else if (type == "yarn") {
        attn_factor = scale > 1.0 ? 0.1 * std::log(scale) + 1.0 : 1.0;
      } else {
        return RopeError(arch, absl::StrCat("type '", type,
                                            "' is not supported (supported: longrope, su, yarn)"));
      }
      out.early_kvs.push_back(F32(absl::StrCat(arch.gguf_arch, ".rope.scaling.attn_factor"),
                                  static_cast<float>(attn_factor)));
      QUANTD_ASSIGN_OR_RETURN(out.long_factors, FactorList(arch, rs, "long_factor"));
      QUANTD_ASSIGN_OR_RETURN(out.short_factors, FactorList(arch, rs, "short_factor"));
      if (out.long_factors.size() != out.short_factors.size() ||
          static_cast<int64_t>(out.long_factors.size()) * 2 != rope_dims) {
        return RopeError(
            arch, absl::StrCat("long_factor and short_factor must each hold ", rope_dims / 2,
                               " values (rope dimensions / 2); they hold ", out.long_factors.size(),
                               " and ", out.short_factors.size()));
      }
      return out;
    }
    case RopeScalingRule::kLlama: {
      const std::string type = !str("type").empty() ? str("type") : str("rope_type");
      if (type == "default") return out;  // transformers' name for no scaling
      if (type != "linear") {
        return RopeError(
            arch, absl::StrCat("type '", type, "' is not supported (supported: linear, default)"));
      }
      if (str("type") == "linear" && number("factor")) {
        out.kvs.push_back(
            GgufKv::String(absl::StrCat(arch.gguf_arch, ".rope.scaling.type"), "linear"));
        out.kvs.push_back(F32(absl::StrCat(arch.gguf_arch, ".rope.scaling.factor"),
                              static_cast<float>(*number("factor"))));
      }
      return out;
    }
    case RopeScalingRule::kQwen2: {
      const std::string type = !str("type").empty() ? str("type") : str("rope_type");
      if (type == "default") return out;
      if (type != "yarn") {
        return RopeError(
            arch, absl::StrCat("type '", type, "' is not supported (supported: yarn, default)"));
      }
      if (str("type") == "yarn" && number("factor")) {
        auto orig = rs.find("original_max_position_embeddings");
        if (orig == rs.end() || !orig->is_number_unsigned()) {
          return RopeError(arch, "yarn needs original_max_position_embeddings");
        }
        out.kvs.push_back(
            GgufKv::String(absl::StrCat(arch.gguf_arch, ".rope.scaling.type"), "yarn"));
        out.kvs.push_back(F32(absl::StrCat(arch.gguf_arch, ".rope.scaling.factor"),
                              static_cast<float>(*number("factor"))));
        out.kvs.push_back(U32(absl::StrCat(arch.gguf_arch, ".rope.scaling.original_context_length"),
                              static_cast<uint32_t>(orig->get<uint64_t>())));
      }
      return out;
    }
  }
  return out;
}

// Rope dimension count for the architecture's rule.
absl::StatusOr<int64_t> RopeDims(const Architecture& arch, const json& config, const Hparams& h) {
  for (const KvRule& r : arch.kvs) {
    if (r.source == KvSource::kRopeDimsPartial) {
      QUANTD_ASSIGN_OR_RETURN(std::optional<double> pct,
                              ConfigNumber(config, "partial_rotary_factor"));
      // Python: int(rot_pct * n_embd) // n_head
      const double product = pct.value_or(1.0) * static_cast<double>(h.hidden);
      return static_cast<int64_t>(product) / h.heads;
    }
    if (r.source == KvSource::kRopeDimsHeadDim) return h.head_dim;
  }
  return h.hidden / h.heads;
}

// Appends the metadata for one rule.
absl::Status AddRuleKvs(const Architecture& arch, const KvRule& rule, const json& config,
                        const Hparams& h, int64_t rope_dims, const RopeScaling& rope,
                        std::vector<GgufKv>* kvs) {
  const std::string key = absl::StrCat(arch.gguf_arch, ".", rule.key);
  auto u32 = [&](std::string k, int64_t v) -> absl::Status {
    if (v < 0 || v > 0xffffffffll) {
      return absl::InvalidArgumentError(
          absl::StrCat("config.json: value ", v, " for ", k, " does not fit uint32"));
    }
    kvs->push_back(U32(std::move(k), static_cast<uint32_t>(v)));
    return absl::OkStatus();
  };
  auto opt_int = [&](const char* cfg, bool required) -> absl::Status {
    QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> v, ConfigInt(config, cfg));
    if (!v) {
      if (required)
        return absl::InvalidArgumentError(absl::StrCat("config.json: '", cfg, "' is missing"));
      return absl::OkStatus();
    }
    return u32(key, *v);
  };
  auto opt_float = [&](const char* cfg, bool required) -> absl::Status {
    QUANTD_ASSIGN_OR_RETURN(std::optional<double> v, ConfigNumber(config, cfg));
    if (!v) {
      if (required)
        return absl::InvalidArgumentError(absl::StrCat("config.json: '", cfg, "' is missing"));
      return absl::OkStatus();
    }
    kvs->push_back(F32(key, static_cast<float>(*v)));
    return absl::OkStatus();
  };
  switch (rule.source) {
    case KvSource::kBlockCount:
      return u32(key, h.layers);
    case KvSource::kContextLength:
      return opt_int("max_position_embeddings", false);
    case KvSource::kContextLengthRequired: {
      QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> n, ConfigInt(config, "n_positions"));
      if (n) return u32(key, *n);
      return opt_int("max_position_embeddings", true);
    }
    case KvSource::kOriginalContextLength:
      return opt_int("original_max_position_embeddings", true);
    case KvSource::kEmbeddingLength:
      return u32(key, h.hidden);
    case KvSource::kFeedForwardLength:
      return u32(key, h.ffn);
    case KvSource::kHeadCount:
      return u32(key, h.heads);
    case KvSource::kHeadCountKv:
      return opt_int("num_key_value_heads", false);
    case KvSource::kHeadCountKvRequired:
      return opt_int("num_key_value_heads", true);
    case KvSource::kRopeFreqBase:
      return opt_float("rope_theta", false);
    case KvSource::kRopeFreqBaseRequired:
      return opt_float("rope_theta", true);
    case KvSource::kRmsEps:
      return opt_float("rms_norm_eps", false);
    case KvSource::kRmsEpsRequired:
      return opt_float("rms_norm_eps", true);
    case KvSource::kLayerNormEps:
      for (const char* cfg : {"layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"}) {
        QUANTD_ASSIGN_OR_RETURN(std::optional<double> v, ConfigNumber(config, cfg));
        if (v) {
          kvs->push_back(F32(key, static_cast<float>(*v)));
          break;
        }
      }
      return absl::OkStatus();
    case KvSource::kKeyValueLength: {
      QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> hd, ConfigInt(config, "head_dim"));
      if (!hd) return absl::OkStatus();
      QUANTD_RETURN_IF_ERROR(u32(absl::StrCat(arch.gguf_arch, ".attention.key_length"), *hd));
      return u32(absl::StrCat(arch.gguf_arch, ".attention.value_length"), *hd);
    }
    case KvSource::kFileType:
      return u32("general.file_type", 0);
    case KvSource::kVocabSize:
      return u32(key, h.vocab);
    case KvSource::kRopeDimsHeadDim:
    case KvSource::kRopeDimsPartial:
      return u32(key, rope_dims);
    case KvSource::kSlidingWindowOrZero: {
      QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> sw, ConfigInt(config, "sliding_window"));
      return u32(key, sw.value_or(0));
    }
    case KvSource::kRopeScalingLinear:
    case KvSource::kRopeScalingYarn:
      kvs->insert(kvs->end(), rope.kvs.begin(), rope.kvs.end());
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

// True when README.md opens with a YAML front matter block (model card
// metadata the converter would copy into general.*).
bool HasModelCardMetadata(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "README.md");
  std::string first;
  return in && std::getline(in, first) && first == "---";
}

// The converter's own outtypes; others need the quantize path.
absl::Status CheckConverterOuttype(gguf::FileType outtype) {
  if (IsConverterOuttype(outtype)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "WriteCheckpointGguf writes the converter's outtypes F32, F16, BF16 or Q8_0, not ",
      gguf::FileTypeName(outtype), " (llama-quantize types go through RunGguf on the source)"));
}

}  // namespace

bool IsConverterOuttype(gguf::FileType ftype) {
  return ftype == gguf::FileType::kAllF32 || ftype == gguf::FileType::kF16 ||
         ftype == gguf::FileType::kBF16 || ftype == gguf::FileType::kQ8_0;
}

TokenizerKvsFn DefaultTokenizerKvs() { return TokenizerGgufKvs; }

absl::StatusOr<std::unique_ptr<CheckpointGgufSource>> CheckpointGgufSource::Open(
    const std::string& dir, const CheckpointGgufOptions& options) {
  std::unique_ptr<CheckpointGgufSource> src(new CheckpointGgufSource());
  QUANTD_ASSIGN_OR_RETURN(src->checkpoint_, Checkpoint::Open(dir));
  const json& config = src->checkpoint_->config();
  QUANTD_ASSIGN_OR_RETURN(src->arch_, FindArchitecture(config));
  const Architecture& arch = *src->arch_;
  QUANTD_ASSIGN_OR_RETURN(src->hparams_, ReadHparams(config));
  const Hparams& h = src->hparams_;
  QUANTD_ASSIGN_OR_RETURN(const int64_t rope_dims, RopeDims(arch, config, h));
  QUANTD_ASSIGN_OR_RETURN(RopeScaling rope, ReadRopeScaling(arch, config, h, rope_dims));

  // Expected tensors: HF name -> rule.
  struct Expected {
    const TensorRule* rule;
    std::string gguf;
    std::vector<int64_t> shape;
    bool seen = false;
  };
  std::map<std::string, Expected> expected;
  auto expand = [](const char* pattern, int64_t layer) {
    return absl::StrReplaceAll(pattern, {{"{}", absl::StrCat(layer)}});
  };
  auto add_rule = [&](const TensorRule& rule, int64_t layer) {
    Expected e{&rule, expand(rule.gguf, layer), {}};
    for (Dim d : rule.shape) e.shape.push_back(h.DimValue(d));
    expected.emplace(expand(rule.hf, layer), std::move(e));
  };
  for (const TensorRule& rule : arch.global_tensors) add_rule(rule, 0);
  for (int64_t layer = 0; layer < h.layers; ++layer) {
    for (const TensorRule& rule : arch.layer_tensors) add_rule(rule, layer);
  }
  if (h.head_dim % 2 != 0) {
    for (const TensorRule& rule : arch.layer_tensors) {
      if (rule.permute != Permute::kNone) {
        return absl::InvalidArgumentError(absl::StrCat("config.json: head dimension ", h.head_dim,
                                                       " is odd; ", arch.hf_class,
                                                       " needs an even one"));
      }
    }
  }

  // Generated tensors first (the converter's generate_extra_tensors).
  auto add_generated = [&](const char* name, std::vector<float> values) {
    gguf::GgufTensorInfo info{name, {static_cast<int64_t>(values.size())}, GgmlType::kF32};
    info.nbytes = values.size() * sizeof(float);
    src->tensors_.push_back(std::move(info));
    Entry entry;
    entry.generated = std::move(values);
    src->entries_.push_back(std::move(entry));
  };
  if (!rope.long_factors.empty()) {
    add_generated("rope_factors_long.weight", rope.long_factors);
    add_generated("rope_factors_short.weight", rope.short_factors);
  }

  for (const Checkpoint::TensorRef& ref : src->checkpoint_->tensors()) {
    const SafetensorsTensor& t = *ref.tensor;
    if (Ignored(t.name)) continue;
    auto it = expected.find(t.name);
    if (it == expected.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          ref.shard->path(), ": tensor '", t.name, "' is not part of a ", arch.hf_class,
          " checkpoint with ", h.layers, " layers; Quantd does not know where it goes"));
    }
    Expected& e = it->second;
    if (t.shape != e.shape) {
      return absl::InvalidArgumentError(
          absl::StrCat(ref.shard->path(), ": tensor '", t.name, "' has shape ", ShapeText(t.shape),
                       " but config.json implies ", ShapeText(e.shape), " (hidden_size ", h.hidden,
                       ", heads ", h.heads, "/", h.kv_heads, ", head_dim ", h.head_dim,
                       ", intermediate_size ", h.ffn, ", vocab_size ", h.vocab, ")"));
    }
    e.seen = true;
    gguf::GgufTensorInfo info;
    info.name = e.gguf;
    info.type = GgmlType::kF32;
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) {
      if (*d != 1) info.ne.push_back(*d);  // the converter squeezes size-1 dims
    }
    if (info.ne.empty()) info.ne.push_back(1);
    info.nbytes = static_cast<uint64_t>(t.Elements()) * sizeof(float);
    Entry entry;
    entry.ref = &ref;
    entry.permute = e.rule->permute;
    entry.permute_heads = e.rule->permute == Permute::kHeads ? h.heads : h.kv_heads;
    src->tensors_.push_back(std::move(info));
    src->entries_.push_back(std::move(entry));
  }
  for (const auto& [name, e] : expected) {
    if (e.seen || (e.rule->optional && h.tied_embeddings)) continue;
    return absl::InvalidArgumentError(absl::StrCat("checkpoint ", dir, " has no tensor '", name,
                                                   "'; config.json implies one of shape ",
                                                   ShapeText(e.shape)));
  }
  gguf::LayoutTensors(&src->tensors_, src->alignment());

  // Metadata, in the converter's order.
  int64_t total_params = 0;
  for (const auto& t : src->tensors_) total_params += t.Elements();
  std::vector<GgufKv>& kvs = src->kvs_;
  kvs.push_back(GgufKv::String("general.architecture", arch.gguf_arch));
  kvs.insert(kvs.end(), rope.early_kvs.begin(), rope.early_kvs.end());
  kvs.push_back(GgufKv::String("general.type", "model"));
  std::optional<std::string> name_or_path;
  if (auto n = config.find("_name_or_path"); n != config.end() && n->is_string())
    name_or_path = n->get<std::string>();
  std::string folder_name = options.folder_name;
  if (folder_name.empty()) {
    fs::path p = fs::absolute(dir).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();  // "dir/" and "." end in an empty component
    folder_name = p.filename().string();
  }
  const GeneralNaming naming = DeriveGeneralNaming(name_or_path, folder_name, total_params);
  kvs.push_back(GgufKv::String("general.name", naming.name));
  if (naming.version) kvs.push_back(GgufKv::String("general.version", *naming.version));
  if (naming.organization)
    kvs.push_back(GgufKv::String("general.organization", *naming.organization));
  if (naming.finetune) kvs.push_back(GgufKv::String("general.finetune", *naming.finetune));
  if (naming.basename) kvs.push_back(GgufKv::String("general.basename", *naming.basename));
  if (naming.size_label) kvs.push_back(GgufKv::String("general.size_label", *naming.size_label));
  for (const KvRule& rule : arch.kvs) {
    QUANTD_RETURN_IF_ERROR(AddRuleKvs(arch, rule, config, h, rope_dims, rope, &kvs));
  }
  if (options.tokenizer_kvs) {
    QUANTD_ASSIGN_OR_RETURN(std::vector<GgufKv> tok,
                            options.tokenizer_kvs(dir, config, arch.hf_class));
    kvs.insert(kvs.end(), std::make_move_iterator(tok.begin()), std::make_move_iterator(tok.end()));
  } else {
    src->notes_.push_back("no tokenizer metadata written: no tokenizer reader was given");
  }
  kvs.push_back(U32("general.quantization_version", kQuantizationVersion));
  if (HasModelCardMetadata(dir)) {
    src->notes_.push_back(
        "README.md model-card metadata (license, tags, base model, ...) is not copied into "
        "general.* keys; "
        "llama.cpp's converter copies it, so such outputs differ from its bytes");
  }
  return src;
}

void CheckpointGgufSource::ReadRows(size_t index, int64_t first_row, int64_t num_rows,
                                    float* dst) const {
  const Entry& e = entries_[index];
  const int64_t ne0 = tensors_[index].ne[0];
  if (e.ref == nullptr) {
    std::memcpy(dst, e.generated.data() + first_row * ne0,
                static_cast<size_t>(num_rows * ne0) * sizeof(float));
    return;
  }
  const SafetensorsTensor& t = *e.ref->tensor;
  const uint8_t* base = e.ref->shard->Data(t).data();
  const int elem = DtypeSize(t.dtype);
  auto convert = [&](int64_t src_row, int64_t rows, float* out) {
    const uint8_t* p = base + src_row * ne0 * elem;
    DtypeToFloat(t.dtype, p, static_cast<size_t>(rows * ne0), out);
  };
  if (e.permute == Permute::kNone) {
    convert(first_row, num_rows, dst);
    return;
  }
  // Output row h*hd + 2*i + j comes from input row h*hd + j*(hd/2) + i.
  const int64_t rows = tensors_[index].Rows();
  const int64_t hd = rows / e.permute_heads;
  const int64_t half = hd / 2;
  for (int64_t r = first_row; r < first_row + num_rows; ++r) {
    const int64_t head = r / hd, within = r % hd;
    const int64_t src_row = head * hd + (within % 2) * half + within / 2;
    convert(src_row, 1, dst + (r - first_row) * ne0);
  }
}

void CheckpointGgufSource::Release(size_t index) const {
  const Entry& e = entries_[index];
  if (e.ref != nullptr) e.ref->shard->Release(*e.ref->tensor);
}

void CheckpointGgufSource::ReleaseRows(size_t index, int64_t first_row, int64_t num_rows) const {
  const Entry& e = entries_[index];
  if (e.ref == nullptr || e.permute != Permute::kNone) return;
  const uint64_t row_bytes =
      static_cast<uint64_t>(tensors_[index].ne[0]) * DtypeSize(e.ref->tensor->dtype);
  e.ref->shard->Release(*e.ref->tensor, static_cast<uint64_t>(first_row) * row_bytes,
                        static_cast<uint64_t>(num_rows) * row_bytes);
}

uint64_t CheckpointGgufSource::SourceBytes(size_t index) const {
  const Entry& e = entries_[index];
  return e.ref != nullptr ? e.ref->tensor->nbytes : 0;
}

std::string CheckpointGgufSource::SourceDtype(size_t index) const {
  const Entry& e = entries_[index];
  return std::string(e.ref != nullptr ? DtypeName(e.ref->tensor->dtype) : "F32");
}

GgmlType CheckpointGgufSource::ConverterType(size_t index, gguf::FileType outtype) const {
  const gguf::GgufTensorInfo& t = tensors_[index];
  if (outtype == gguf::FileType::kAllF32) return GgmlType::kF32;
  if (t.ne.size() <= 1 || absl::EndsWith(t.name, "_norm.weight") ||
      !absl::EndsWith(t.name, ".weight")) {
    return GgmlType::kF32;
  }
  switch (outtype) {
    case gguf::FileType::kF16:
      return GgmlType::kF16;
    case gguf::FileType::kBF16:
      return GgmlType::kBF16;
    case gguf::FileType::kQ8_0:
      // gguf-py refuses rows that are not whole blocks; the converter then writes F16.
      return t.ne[0] % gguf::TypeInfo(GgmlType::kQ8_0).block_size == 0 ? GgmlType::kQ8_0
                                                                       : GgmlType::kF16;
    default:
      return GgmlType::kF32;
  }
}

absl::StatusOr<Report> WriteCheckpointGguf(const CheckpointGgufSource& source,
                                           gguf::FileType outtype, const std::string& output_path,
                                           const RunContext& ctx) {
  QUANTD_RETURN_IF_ERROR(CheckConverterOuttype(outtype));
  std::vector<GgufKv> kvs = source.kvs();
  for (GgufKv& kv : kvs) {
    if (kv.key == "general.file_type")
      kv = U32("general.file_type", static_cast<uint32_t>(outtype));
  }
  std::vector<gguf::GgufTensorInfo> out = source.tensors();
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].type = source.ConverterType(i, outtype);
    out[i].nbytes =
        static_cast<uint64_t>(gguf::RowBytes(out[i].type, out[i].ne[0]) * out[i].Rows());
  }
  const uint64_t alignment = source.alignment();
  QUANTD_ASSIGN_OR_RETURN(
      gguf::GgufFileStart start,
      gguf::StartGgufFile(output_path, kvs, &out, alignment, ctx.output_digests));
  std::unique_ptr<AtomicFileWriter> writer = std::move(start.writer);
  const uint64_t total_bytes = start.total_bytes;

  Report report;
  report.format = "gguf";
  report.precision = gguf::FileTypeName(outtype);
  report.tensors_total = out.size();
  report.notes = source.notes();
  Progress prog{"convert", 0, out.size(), writer->offset(), total_bytes};
  ctx.Report(prog);
  std::vector<float> rows_f32;
  std::vector<uint8_t> rows_out;
  for (size_t i = 0; i < out.size(); ++i) {
    QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
    const gguf::GgufTensorInfo& t = out[i];
    const int64_t ne0 = t.ne[0];
    const int64_t rows = t.Rows();
    const int64_t chunk = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(ne0, 1));
    const int64_t row_bytes = gguf::RowBytes(t.type, ne0);
    rows_f32.resize(static_cast<size_t>(std::min(chunk, rows) * ne0));
    rows_out.resize(static_cast<size_t>(std::min(chunk, rows) * row_bytes));
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t nr = std::min(chunk, rows - r0);
      source.ReadRows(i, r0, nr, rows_f32.data());
      // Quantized types refuse NaN/Inf (float types carry them over).
      if (gguf::TypeInfo(t.type).quantized) {
        const int64_t bad = FirstNonFiniteF32(rows_f32.data(), nr * ne0);
        if (bad >= 0) {
          return NonFiniteWeightError(t.name, r0 * ne0 + bad, rows_f32[static_cast<size_t>(bad)]);
        }
      }
      gguf::QuantizeRow(t.type, rows_f32.data(), rows_out.data(), nr * ne0);
      QUANTD_RETURN_IF_ERROR(writer->Write(rows_out.data(), static_cast<size_t>(nr * row_bytes)));
      source.ReleaseRows(i, r0, nr);
    }
    QUANTD_RETURN_IF_ERROR(writer->PadTo(alignment));
    source.Release(i);
    report.bytes_before += source.SourceBytes(i);
    report.bytes_after += t.nbytes;
    if (gguf::TypeName(t.type) != source.SourceDtype(i)) {
      TensorReport tr;
      tr.name = t.name;
      tr.shape = t.ne;
      tr.dtype_before = std::string(source.SourceDtype(i));
      tr.dtype_after = gguf::TypeName(t.type);
      tr.bytes_before = source.SourceBytes(i);
      tr.bytes_after = t.nbytes;
      report.tensors.push_back(std::move(tr));
      report.tensors_converted += 1;
    }
    if (gguf::TypeInfo(t.type).quantized)
      report.weights_quantized += static_cast<uint64_t>(t.Elements());
    prog.tensors_done += 1;
    prog.bytes_done = writer->offset();
    ctx.Report(prog);
  }
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
  if (writer->offset() != total_bytes) {
    return absl::InternalError(
        absl::StrCat("GGUF writer produced ", writer->offset(), " bytes, expected ", total_bytes));
  }
  QUANTD_RETURN_IF_ERROR(writer->Commit());
  ctx.Report(Progress{"done", prog.tensors_done, prog.tensors_total, total_bytes, total_bytes});
  report.output_files = {output_path};
  report.output_file_bytes = total_bytes;
  report.notes.push_back(absl::StrCat("converted the ", source.architecture().hf_class,
                                      " checkpoint as llama.cpp's convert_hf_to_gguf.py --outtype ",
                                      absl::AsciiStrToLower(gguf::FileTypeName(outtype))));
  return report;
}

absl::StatusOr<Report> RunCheckpointGguf(const Recipe& recipe, const std::string& input_dir,
                                         const std::string& output_path, const RunContext& ctx) {
  if (recipe.gguf_type.empty()) {
    return absl::InvalidArgumentError(
        "a checkpoint folder needs --gguf-type (F32, F16, BF16, Q8_0 or a llama-quantize type such "
        "as Q4_K_M)");
  }
  QUANTD_ASSIGN_OR_RETURN(gguf::FileType ftype, gguf::ParseFileType(recipe.gguf_type));
  const bool converter = IsConverterOuttype(ftype);
  if (converter && (recipe.leave_output_tensor || recipe.pure ||
                    !recipe.output_tensor_type.empty() || !recipe.token_embedding_type.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--leave-output-tensor, --pure, --output-tensor-type and --token-embedding-type apply to "
        "llama-quantize types, not to the converter's outtype ",
        gguf::FileTypeName(ftype)));
  }
  ctx.Report(Progress{"load", 0, 0, 0, 0});
  CheckpointGgufOptions options;
  options.tokenizer_kvs = DefaultTokenizerKvs();
  options.folder_name = recipe.model_name;  // empty: input_dir's own name
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointGgufSource> source,
                          CheckpointGgufSource::Open(input_dir, options));
  if (converter) return WriteCheckpointGguf(*source, ftype, output_path, ctx);
  QUANTD_ASSIGN_OR_RETURN(Report report, RunGguf(recipe, *source, output_path, ctx));
  report.notes.insert(report.notes.begin(), source->notes().begin(), source->notes().end());
  report.notes.push_back(
      absl::StrCat("converted the ", source->architecture().hf_class,
                   " checkpoint as llama.cpp's convert_hf_to_gguf.py --outtype f32 followed by "
                   "llama-quantize ",
                   gguf::FileTypeName(ftype), ", in one step"));
  return report;
}

}  // namespace quantd::core::checkpoint
