#include "quantd/core/gguf/gguf_mix.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace quantd::core::gguf {
namespace {

struct FileTypeName {
  const char* name;
  FileType ftype;
};
constexpr FileTypeName kFileTypes[] = {
    {"Q4_0", FileType::kQ4_0},
    {"Q4_1", FileType::kQ4_1},
    {"Q5_0", FileType::kQ5_0},
    {"Q5_1", FileType::kQ5_1},
    {"IQ4_NL", FileType::kIQ4_NL},
    {"Q2_K", FileType::kQ2_K},
    {"Q3_K_S", FileType::kQ3_K_S},
    {"Q3_K_M", FileType::kQ3_K_M},
    {"Q3_K_L", FileType::kQ3_K_L},
    {"Q4_K_S", FileType::kQ4_K_S},
    {"Q4_K_M", FileType::kQ4_K_M},
    {"Q5_K_S", FileType::kQ5_K_S},
    {"Q5_K_M", FileType::kQ5_K_M},
    {"Q6_K", FileType::kQ6_K},
    {"Q8_0", FileType::kQ8_0},
    {"Q2_K_S", FileType::kQ2_K_S},
    {"IQ4_XS", FileType::kIQ4_XS},
    {"IQ3_M", FileType::kIQ3_M},
    {"IQ3_S", FileType::kIQ3_S},
    {"IQ3_XS", FileType::kIQ3_XS},
    {"IQ3_XXS", FileType::kIQ3_XXS},
    {"IQ2_M", FileType::kIQ2_M},
    {"IQ2_S", FileType::kIQ2_S},
    {"IQ2_XS", FileType::kIQ2_XS},
    {"IQ2_XXS", FileType::kIQ2_XXS},
    {"IQ1_M", FileType::kIQ1_M},
    {"IQ1_S", FileType::kIQ1_S},
    {"TQ1_0", FileType::kTQ1_0},
    {"TQ2_0", FileType::kTQ2_0},
    {"F16", FileType::kF16},
    {"BF16", FileType::kBF16},
    {"F32", FileType::kAllF32},
    // llama-quantize's aliases
    {"Q3_K", FileType::kQ3_K_M},
    {"Q4_K", FileType::kQ4_K_M},
    {"Q5_K", FileType::kQ5_K_M},
};

bool Contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// Block index from "blk.N...." (as sscanf("blk.%d.") would), -1 otherwise.
int LayerOf(const std::string& name) {
  if (!absl::StartsWith(name, "blk.")) return -1;
  size_t i = 4;
  bool neg = false;
  if (i < name.size() && (name[i] == '-' || name[i] == '+')) neg = name[i++] == '-';
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  long v = 0;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && v < 1000000000) {
    v = v * 10 + (name[i++] - '0');
  }
  return static_cast<int>(neg ? -v : v);
}

// ggml_n_dims: trailing dimensions of size 1 do not count.
int NDims(const GgufTensorInfo& t) {
  for (int i = static_cast<int>(t.ne.size()) - 1; i >= 1; --i) {
    if (t.ne[i] > 1) return i + 1;
  }
  return 1;
}

bool UseMoreBits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

const GgufKv* FindKv(const std::vector<GgufKv>& kvs, const std::string& key) {
  for (const GgufKv& kv : kvs) {
    if (kv.key == key) return &kv;
  }
  return nullptr;
}

std::optional<int64_t> IntKv(const std::vector<GgufKv>& kvs, const std::string& key) {
  const GgufKv* kv = FindKv(kvs, key);
  if (kv == nullptr) return std::nullopt;
  if (auto v = kv->AsInt()) return v;
  return kv->FirstArrayInt();
}

}  // namespace

absl::StatusOr<FileType> ParseFileType(absl::string_view name) {
  for (const auto& f : kFileTypes) {
    if (absl::EqualsIgnoreCase(name, f.name)) return f.ftype;
  }
  std::string names;
  for (const auto& f : kFileTypes) absl::StrAppend(&names, names.empty() ? "" : " ", f.name);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown GGUF type '", name, "'; use one of: ", names));
}

std::string FileTypeName(FileType ftype) {
  for (const auto& f : kFileTypes) {
    if (f.ftype == ftype) return f.name;
  }
  return absl::StrCat("ftype ", static_cast<uint32_t>(ftype));
}

std::vector<std::string> FileTypeNames() {
  std::vector<std::string> names;
  for (const auto& f : kFileTypes) names.emplace_back(f.name);
  return names;
}

GgmlType DefaultType(FileType ftype) {
  switch (ftype) {
    case FileType::kAllF32:
      return GgmlType::kF32;
    case FileType::kF16:
      return GgmlType::kF16;
    case FileType::kBF16:
      return GgmlType::kBF16;
    case FileType::kQ4_0:
      return GgmlType::kQ4_0;
    case FileType::kQ4_1:
      return GgmlType::kQ4_1;
    case FileType::kQ5_0:
      return GgmlType::kQ5_0;
    case FileType::kQ5_1:
      return GgmlType::kQ5_1;
    case FileType::kQ8_0:
      return GgmlType::kQ8_0;
    case FileType::kQ2_K:
    case FileType::kQ2_K_S:
      return GgmlType::kQ2_K;
    case FileType::kIQ3_XS:
    case FileType::kIQ3_S:
    case FileType::kIQ3_M:
      return GgmlType::kIQ3_S;
    case FileType::kIQ3_XXS:
      return GgmlType::kIQ3_XXS;
    case FileType::kIQ2_XXS:
      return GgmlType::kIQ2_XXS;
    case FileType::kIQ2_XS:
    case FileType::kIQ2_S:
      return GgmlType::kIQ2_XS;
    case FileType::kIQ2_M:
      return GgmlType::kIQ2_S;
    case FileType::kIQ1_S:
      return GgmlType::kIQ1_S;
    case FileType::kIQ1_M:
      return GgmlType::kIQ1_M;
    case FileType::kIQ4_XS:
      return GgmlType::kIQ4_XS;
    case FileType::kTQ1_0:
      return GgmlType::kTQ1_0;
    case FileType::kTQ2_0:
      return GgmlType::kTQ2_0;
    case FileType::kQ3_K_S:
    case FileType::kQ3_K_M:
    case FileType::kQ3_K_L:
      return GgmlType::kQ3_K;
    case FileType::kQ4_K_S:
    case FileType::kQ4_K_M:
      return GgmlType::kQ4_K;
    case FileType::kQ5_K_S:
    case FileType::kQ5_K_M:
      return GgmlType::kQ5_K;
    case FileType::kQ6_K:
      return GgmlType::kQ6_K;
    case FileType::kIQ4_NL:
      return GgmlType::kIQ4_NL;
  }
  return GgmlType::kF32;
}

bool RequiresImportance(FileType ftype) {
  switch (ftype) {
    case FileType::kIQ1_S:
    case FileType::kIQ1_M:
    case FileType::kIQ2_XXS:
    case FileType::kIQ2_XS:
    case FileType::kIQ2_S:
    case FileType::kQ2_K_S:
      return true;
    default:
      return false;
  }
}

ModelFacts GetModelFacts(const GgufFile& file) { return GetModelFacts(file.kvs(), file.tensors()); }

ModelFacts GetModelFacts(const std::vector<GgufKv>& kvs,
                         const std::vector<GgufTensorInfo>& tensors) {
  ModelFacts m;
  if (const GgufKv* a = FindKv(kvs, "general.architecture")) m.arch = a->AsString().value_or("");
  m.n_layer = static_cast<int>(IntKv(kvs, m.arch + ".block_count").value_or(0));
  m.n_head = static_cast<int>(IntKv(kvs, m.arch + ".attention.head_count").value_or(0));
  m.n_head_kv =
      static_cast<int>(IntKv(kvs, m.arch + ".attention.head_count_kv").value_or(m.n_head));
  m.n_expert = static_cast<int>(IntKv(kvs, m.arch + ".expert_count").value_or(0));
  for (const auto& t : tensors) {
    if (Contains(t.name, "attn_v.weight") || Contains(t.name, "attn_qkv.weight") ||
        Contains(t.name, "attn_kv_b.weight")) {
      ++m.n_attention_wv;
    } else if (t.name == "output.weight") {
      m.has_output = true;
    }
  }
  return m;
}

std::vector<size_t> ProcessingOrder(const std::vector<GgufTensorInfo>& tensors) {
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<int> layer(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) layer[i] = LayerOf(tensors[i].name);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (layer[a] != layer[b]) return layer[a] < layer[b];
    return tensors[a].name < tensors[b].name;
  });
  return order;
}

bool TensorAllowsQuantization(const GgufTensorInfo& t, const MixOptions& options) {
  const std::string& name = t.name;
  if (!absl::EndsWith(name, "weight")) return false;
  if (NDims(t) < 2) return false;
  if (Contains(name, "_norm.weight")) return false;
  if (!options.quantize_output_tensor && name == "output.weight") return false;
  if (Contains(name, "ffn_gate_inp.weight")) return false;
  if (name == "position_embd.weight" || name == "token_types.weight") return false;
  for (const char* part :
       {"ssm_conv1d.weight", "time_mix_first.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
        "attn_rel_b.weight"}) {
    if (Contains(name, part)) return false;
  }
  return true;
}

MixPlanner::MixPlanner(ModelFacts facts, MixOptions options)
    : facts_(std::move(facts)), options_(options) {}

bool MixPlanner::IsIq2Family() const {
  using F = FileType;
  const F f = options_.ftype;
  return f == F::kIQ2_XXS || f == F::kIQ2_XS || f == F::kIQ1_S || f == F::kIQ2_S ||
         f == F::kIQ2_M || f == F::kIQ1_M;
}

GgmlType MixPlanner::MixType(GgmlType new_type, const GgufTensorInfo& t) {
  using T = GgmlType;
  using F = FileType;
  const std::string& name = t.name;
  const F ftype = options_.ftype;
  const bool falcon = facts_.arch == "falcon";
  const bool imatrix = options_.has_imatrix;
  const int n_expert = std::max(1, facts_.n_expert);
  const int n_gqa = facts_.n_gqa();
  // With experts the layer comes from the name (experts are not contiguous).
  auto layer_info = [&](int i_layer) {
    if (n_expert > 1) {
      const int l = LayerOf(name);
      if (l >= 0) i_layer = l;
    }
    return std::make_pair(i_layer, facts_.n_layer);
  };
  const bool iq2_s_or_m = ftype == F::kIQ2_S || ftype == F::kIQ2_M;

  if (name == "output.weight" || (!facts_.has_output && name == "token_embd.weight")) {
    if (options_.output_tensor_type) {
      new_type = *options_.output_tensor_type;
    } else if (falcon || t.ne[0] % TypeInfo(new_type).block_size != 0) {
      new_type = T::kQ8_0;
    } else if (IsIq2Family() || ftype == F::kIQ3_XXS) {
      new_type = T::kQ5_K;
    } else if (new_type != T::kQ8_0) {
      new_type = T::kQ6_K;
    }
  } else if (name == "token_embd.weight") {
    if (options_.token_embedding_type) {
      new_type = *options_.token_embedding_type;
    } else if (ftype == F::kIQ2_XXS || ftype == F::kIQ2_XS || ftype == F::kIQ1_S ||
               ftype == F::kIQ1_M) {
      new_type = T::kQ2_K;
    } else if (iq2_s_or_m || ftype == F::kIQ3_XXS) {
      new_type = T::kIQ3_S;
    } else if (ftype == F::kTQ1_0 || ftype == F::kTQ2_0) {
      new_type = T::kQ4_K;
    }
  } else if (IsIq2Family()) {
    if (Contains(name, "attn_v.weight")) {
      if (n_gqa >= 4 || facts_.n_expert >= 4) {
        new_type = T::kQ4_K;
      } else {
        new_type = iq2_s_or_m ? T::kIQ3_S : T::kQ2_K;
      }
      ++i_attention_wv_;
    } else if (facts_.n_expert == 8 && Contains(name, "attn_k.weight")) {
      new_type = T::kQ4_K;
    } else if (Contains(name, "ffn_down")) {
      if (i_ffn_down_ < facts_.n_layer / 8) new_type = iq2_s_or_m ? T::kIQ3_S : T::kQ2_K;
      ++i_ffn_down_;
    } else if (Contains(name, "attn_output.weight")) {
      if (facts_.n_expert == 8) {
        new_type = T::kQ5_K;
      } else if (ftype == F::kIQ1_S || ftype == F::kIQ1_M) {
        new_type = T::kIQ2_XXS;
      } else if (iq2_s_or_m) {
        new_type = T::kIQ3_S;
      }
    }
  } else if (Contains(name, "attn_v.weight")) {
    const int i = i_attention_wv_;
    if (ftype == F::kQ2_K) {
      new_type = n_gqa >= 4 ? T::kQ4_K : T::kQ3_K;
    } else if (ftype == F::kQ2_K_S && n_gqa >= 4) {
      new_type = T::kQ4_K;
    } else if (ftype == F::kIQ3_XXS) {
      new_type = n_gqa >= 4 ? T::kQ4_K : !imatrix ? T::kIQ3_S : T::kIQ3_XXS;
    } else if ((ftype == F::kIQ3_XS || ftype == F::kIQ3_S) && n_gqa >= 4) {
      new_type = T::kQ4_K;
    } else if (ftype == F::kIQ3_M) {
      new_type = T::kQ4_K;
    } else if (ftype == F::kQ3_K_M) {
      new_type = i < 2 ? T::kQ5_K : T::kQ4_K;
    } else if (ftype == F::kQ3_K_L) {
      new_type = T::kQ5_K;
    } else if ((ftype == F::kIQ4_NL || ftype == F::kIQ4_XS) && n_gqa >= 4) {
      new_type = T::kQ5_K;
    } else if ((ftype == F::kQ4_K_M || ftype == F::kQ5_K_M) &&
               UseMoreBits(i, facts_.n_attention_wv)) {
      new_type = T::kQ6_K;
    } else if (ftype == F::kQ4_K_S && i < 4) {
      new_type = T::kQ5_K;
    }
    if (facts_.is_70b() && (new_type == T::kQ3_K || new_type == T::kQ4_K)) new_type = T::kQ5_K;
    if (facts_.n_expert == 8) new_type = T::kQ8_0;
    ++i_attention_wv_;
  } else if (Contains(name, "attn_k.weight")) {
    if (facts_.n_expert == 8) {
      new_type = T::kQ8_0;
    } else if (ftype == F::kIQ3_XS) {
      new_type = T::kIQ3_XXS;
    } else if (ftype == F::kIQ3_XXS) {
      new_type = T::kIQ2_S;
    }
  } else if (Contains(name, "attn_q.weight")) {
    if (ftype == F::kIQ3_XS) {
      new_type = T::kIQ3_XXS;
    } else if (ftype == F::kIQ3_XXS) {
      new_type = T::kIQ2_S;
    }
  } else if (Contains(name, "ffn_down")) {
    auto [i_layer, n_layer] = layer_info(i_ffn_down_);
    if (ftype == F::kQ2_K) {
      new_type = T::kQ3_K;
    } else if (ftype == F::kQ2_K_S) {
      if (i_layer < n_layer / 8) new_type = T::kQ4_K;
    } else if (ftype == F::kIQ3_XXS && !imatrix) {
      new_type = i_layer < n_layer / 8 ? T::kQ4_K : T::kQ3_K;
    } else if (ftype == F::kQ3_K_M) {
      new_type = i_layer < n_layer / 16                     ? T::kQ5_K
                 : !falcon || UseMoreBits(i_layer, n_layer) ? T::kQ4_K
                                                            : T::kQ3_K;
    } else if (ftype == F::kIQ3_M &&
               (i_layer < n_layer / 8 || (facts_.n_expert == 8 && UseMoreBits(i_layer, n_layer)))) {
      new_type = T::kQ4_K;
    } else if (ftype == F::kQ3_K_L) {
      new_type = falcon ? T::kQ4_K : T::kQ5_K;
    } else if (ftype == F::kQ4_K_M) {
      if (falcon) {
        new_type = i_layer < n_layer / 16          ? T::kQ6_K
                   : UseMoreBits(i_layer, n_layer) ? T::kQ5_K
                                                   : T::kQ4_K;
      } else if (UseMoreBits(i_layer, n_layer)) {
        new_type = T::kQ6_K;
      }
    } else if (i_layer < n_layer / 8 && (ftype == F::kIQ4_NL || ftype == F::kIQ4_XS) && !imatrix) {
      new_type = T::kQ5_K;
    } else if (ftype == F::kQ5_K_M && UseMoreBits(i_layer, n_layer)) {
      new_type = T::kQ6_K;
    } else if (ftype == F::kQ4_K_S && !falcon && i_layer < n_layer / 8) {
      new_type = T::kQ5_K;
    } else if ((ftype == F::kQ4_0 || ftype == F::kQ5_0) && imatrix && i_layer < n_layer / 8) {
      // llama-quantize guards the first ffn_down layers of Q4_0/Q5_0 with
      // an importance matrix (only then, so plain runs stay as before).
      new_type = ftype == F::kQ4_0 ? T::kQ4_1 : T::kQ5_1;
    }
    ++i_ffn_down_;
  } else if (Contains(name, "attn_output.weight")) {
    if (!falcon) {
      if (facts_.n_expert == 8) {
        if (ftype == F::kQ2_K || ftype == F::kIQ3_XS || ftype == F::kIQ3_XXS ||
            ftype == F::kQ3_K_S || ftype == F::kQ3_K_M || ftype == F::kIQ4_NL ||
            ftype == F::kQ4_K_S || ftype == F::kQ4_K_M || ftype == F::kIQ3_S ||
            ftype == F::kIQ3_M || ftype == F::kIQ4_XS) {
          new_type = T::kQ5_K;
        }
      } else {
        if (ftype == F::kQ2_K) {
          new_type = T::kQ3_K;
        } else if (ftype == F::kIQ3_XXS) {
          new_type = T::kIQ3_S;
        } else if (ftype == F::kQ3_K_M) {
          new_type = T::kQ4_K;
        } else if (ftype == F::kQ3_K_L) {
          new_type = T::kQ5_K;
        } else if (ftype == F::kIQ3_M) {
          new_type = T::kQ4_K;
        }
      }
    } else if (ftype == F::kQ3_K_L) {
      new_type = T::kQ4_K;
    }
  } else if (Contains(name, "attn_qkv.weight")) {
    if (ftype == F::kQ3_K_M || ftype == F::kQ3_K_L || ftype == F::kIQ3_M) {
      new_type = T::kQ4_K;
    } else if (ftype == F::kQ4_K_M) {
      new_type = T::kQ5_K;
    } else if (ftype == F::kQ5_K_M) {
      new_type = T::kQ6_K;
    }
  } else if (Contains(name, "ffn_gate")) {
    auto [i_layer, n_layer] = layer_info(i_ffn_gate_);
    if (ftype == F::kIQ3_XS && i_layer >= n_layer / 8 && i_layer < 7 * n_layer / 8) {
      new_type = T::kIQ3_XXS;
    }
    ++i_ffn_gate_;
  } else if (Contains(name, "ffn_up")) {
    auto [i_layer, n_layer] = layer_info(i_ffn_up_);
    if (ftype == F::kIQ3_XS && i_layer >= n_layer / 8 && i_layer < 7 * n_layer / 8) {
      new_type = T::kIQ3_XXS;
    }
    ++i_ffn_up_;
  }
  return new_type;
}

GgmlType MixPlanner::Fallback(GgmlType type, const GgufTensorInfo& t) {
  const int64_t nx = t.ne[0];
  if (nx % TypeInfo(type).block_size == 0) return type;
  ++n_fallback_;
  GgmlType out;
  switch (type) {
    case GgmlType::kTQ1_0:
    case GgmlType::kTQ2_0:
      out = GgmlType::kQ4_0;
      break;
    case GgmlType::kQ4_K:
      out = GgmlType::kQ5_0;
      break;
    case GgmlType::kQ5_K:
      out = GgmlType::kQ5_1;
      break;
    case GgmlType::kQ6_K:
      out = GgmlType::kQ8_0;
      break;
    default:
      out = GgmlType::kIQ4_NL;
      break;  // Q2_K, Q3_K, IQ*: 256 -> 32
  }
  if (nx % TypeInfo(out).block_size != 0) out = GgmlType::kF16;
  return out;
}

absl::StatusOr<GgmlType> MixPlanner::Choose(const GgufTensorInfo& t, std::string* rule) {
  std::string why = "copy";
  if (!TensorAllowsQuantization(t, options_)) {
    if (rule != nullptr) *rule = why;
    return t.type;
  }
  const GgmlType default_type = DefaultType(options_.ftype);
  GgmlType new_type = default_type;
  why = options_.pure ? "pure" : "mix";
  if (TypeInfo(default_type).quantized) {
    // --tensor-type: the first pattern found in the name whose type differs
    // from the default replaces the mix rules (their counters do not move).
    bool manual = false;
    if (!options_.pure) {
      for (size_t i = 0; i < options_.tensor_type_patterns.size(); ++i) {
        if (options_.tensor_type_patterns.PartialMatchAt(i, t.name) &&
            options_.tensor_type_types[i] != new_type) {
          new_type = options_.tensor_type_types[i];
          manual = true;
          why = absl::StrCat("tensor_type[", i, "]");
          break;
        }
      }
    }
    if (!options_.pure && !manual) new_type = MixType(new_type, t);
    const int before = n_fallback_;
    new_type = Fallback(new_type, t);
    if (n_fallback_ != before) absl::StrAppend(&why, " fallback");
  }
  std::optional<GgmlType> user;
  if (options_.token_embedding_type && t.name == "token_embd.weight") {
    user = options_.token_embedding_type;
    why = "token_embedding_type";
  }
  if (options_.output_tensor_type && t.name == "output.weight") {
    user = options_.output_tensor_type;
    why = "output_tensor_type";
  }
  if (user) {
    new_type = *user;
    if (t.ne[0] % TypeInfo(new_type).block_size != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name, "' has rows of ", t.ne[0],
                       " values, not a multiple of the ", TypeName(new_type), " block size ",
                       TypeInfo(new_type).block_size, "; choose another type for it"));
    }
  }
  if (new_type == t.type) why = "copy";
  if (rule != nullptr) *rule = why;
  return new_type;
}

}  // namespace quantd::core::gguf
