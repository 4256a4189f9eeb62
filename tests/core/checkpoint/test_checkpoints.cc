#include "test_checkpoints.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "absl/strings/str_cat.h"
#include "quantd/core/base/half.h"

namespace quantd::core::checkpoint::testing {
namespace {

namespace fs = std::filesystem;

int64_t Elements(const FakeTensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  return n;
}

std::string TensorData(const FakeTensor& t) {
  const int64_t n = Elements(t);
  std::string out;
  for (int64_t i = 0; i < n; ++i) {
    const float v = FakeValue(t.name, i);
    if (t.dtype == "F32") {
      out.append(reinterpret_cast<const char*>(&v), 4);
    } else {
      uint16_t h = t.dtype == "F16" ? FloatToHalf(v) : t.dtype == "BF16" ? FloatToBfloat16(v) : 0;
      out.append(reinterpret_cast<const char*>(&h), 2);
    }
  }
  return out;
}

}  // namespace

float FakeValue(const std::string& name, int64_t i) {
  const double salt = static_cast<double>(std::hash<std::string>()(name) % 1000) * 0.001;
  return static_cast<float>(std::sin(0.37 * static_cast<double>(i) + salt) * (1.0 + salt));
}

std::string RawSafetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string SafetensorsBytes(const std::vector<FakeTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::string data;
  for (const FakeTensor& t : tensors) {
    const std::string bytes = TensorData(t);
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  }
  return RawSafetensors(header.dump(), data);
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

nlohmann::json TinyConfig(const std::string& architecture, int kv_heads) {
  nlohmann::json c = {
      {"architectures", {architecture}},
      {"hidden_size", 64},
      {"num_hidden_layers", 2},
      {"num_attention_heads", 4},
      {"num_key_value_heads", kv_heads},
      {"intermediate_size", 96},
      {"vocab_size", 128},
      {"max_position_embeddings", 4096},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 10000.0},
      {"tie_word_embeddings", false},
  };
  if (architecture == "Phi3ForCausalLM") {
    c["original_max_position_embeddings"] = 4096;
    c["sliding_window"] = 2047;
  }
  return c;
}

std::vector<FakeTensor> TinyTensors(const nlohmann::json& config, const std::string& dtype) {
  const std::string arch = config["architectures"][0];
  const int64_t hidden = config["hidden_size"], heads = config["num_attention_heads"];
  const int64_t kv = config["num_key_value_heads"], ffn = config["intermediate_size"];
  const int64_t vocab = config["vocab_size"], layers = config["num_hidden_layers"];
  const int64_t hd =
      config.contains("head_dim") ? config["head_dim"].get<int64_t>() : hidden / heads;
  const bool tied = config.value("tie_word_embeddings", false);
  std::vector<FakeTensor> t;
  t.push_back({"model.embed_tokens.weight", {vocab, hidden}, dtype});
  t.push_back({"model.norm.weight", {hidden}, dtype});
  if (!tied) t.push_back({"lm_head.weight", {vocab, hidden}, dtype});
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    t.push_back({p + "input_layernorm.weight", {hidden}, dtype});
    t.push_back({p + "post_attention_layernorm.weight", {hidden}, dtype});
    t.push_back({p + "self_attn.o_proj.weight", {hidden, heads * hd}, dtype});
    t.push_back({p + "mlp.down_proj.weight", {hidden, ffn}, dtype});
    if (arch == "Phi3ForCausalLM") {
      t.push_back({p + "self_attn.qkv_proj.weight", {(heads + 2 * kv) * hd, hidden}, dtype});
      t.push_back({p + "mlp.gate_up_proj.weight", {2 * ffn, hidden}, dtype});
    } else {
      t.push_back({p + "self_attn.q_proj.weight", {heads * hd, hidden}, dtype});
      t.push_back({p + "self_attn.k_proj.weight", {kv * hd, hidden}, dtype});
      t.push_back({p + "self_attn.v_proj.weight", {kv * hd, hidden}, dtype});
      t.push_back({p + "mlp.gate_proj.weight", {ffn, hidden}, dtype});
      t.push_back({p + "mlp.up_proj.weight", {ffn, hidden}, dtype});
    }
    if (arch == "Qwen2ForCausalLM") {
      t.push_back({p + "self_attn.q_proj.bias", {heads * hd}, dtype});
      t.push_back({p + "self_attn.k_proj.bias", {kv * hd}, dtype});
      t.push_back({p + "self_attn.v_proj.bias", {kv * hd}, dtype});
    }
  }
  return t;
}

void WriteCheckpoint(const std::string& dir, const nlohmann::json& config,
                     const std::vector<FakeTensor>& tensors, int shards) {
  fs::create_directories(dir);
  WriteBytes((fs::path(dir) / "config.json").string(), config.dump(2));
  if (shards == 1) {
    WriteBytes((fs::path(dir) / "model.safetensors").string(), SafetensorsBytes(tensors));
    return;
  }
  nlohmann::json index = {{"metadata", nlohmann::json::object()},
                          {"weight_map", nlohmann::json::object()}};
  std::vector<std::vector<FakeTensor>> parts(static_cast<size_t>(shards));
  for (size_t k = 0; k < tensors.size(); ++k) {
    const int s = static_cast<int>(k % static_cast<size_t>(shards));
    parts[static_cast<size_t>(s)].push_back(tensors[k]);
    index["weight_map"][tensors[k].name] =
        absl::StrCat("model-0000", s + 1, "-of-0000", shards, ".safetensors");
  }
  for (int s = 0; s < shards; ++s) {
    WriteBytes(
        (fs::path(dir) / absl::StrCat("model-0000", s + 1, "-of-0000", shards, ".safetensors"))
            .string(),
        SafetensorsBytes(parts[static_cast<size_t>(s)]));
  }
  WriteBytes((fs::path(dir) / "model.safetensors.index.json").string(), index.dump(2));
}

}  // namespace quantd::core::checkpoint::testing
