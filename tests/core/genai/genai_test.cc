// Checkpoint -> ONNX Runtime GenAI folder: rotary caches, genai_config.json,
// the decoder graph (built without weights, filled while saving), the
// tied-embedding share and the run's all-or-nothing folder. Whether ONNX
// Runtime computes the reference logits from these folders is checked in
// tests/e2e/genai_test.sh.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "onnx/onnx_pb.h"
#include "quantd/core/base/half.h"
#include "quantd/core/checkpoint/checkpoint.h"
#include "quantd/core/genai/decoder_graph.h"
#include "quantd/core/genai/genai_config.h"
#include "quantd/core/genai/genai_run.h"
#include "quantd/core/genai/rope_caches.h"
#include "quantd/core/run.h"
#include "test_checkpoints.h"

namespace quantd::core::genai {
namespace {

namespace fs = std::filesystem;
using checkpoint::testing::FakeValue;
using checkpoint::testing::TinyConfig;
using checkpoint::testing::TinyTensors;
using checkpoint::testing::WriteCheckpoint;
using nlohmann::json;
using ::testing::HasSubstr;

MATCHER_P2(StatusIs, code, substr, "") {
  return arg.code() == code && absl::StrContains(arg.message(), substr);
}

class GenaiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            absl::StrCat("genai_test_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "ckpt");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string Ckpt() const { return (root_ / "ckpt").string(); }

  // A tiny checkpoint of `arch` with an eos id (genai_config.json needs one).
  json Write(const std::string& arch, int kv_heads = 2, const std::string& dtype = "F32",
             bool tied = false) {
    json config = TinyConfig(arch, kv_heads);
    config["eos_token_id"] = 2;
    config["tie_word_embeddings"] = tied;
    WriteCheckpoint(Ckpt(), config, TinyTensors(config, dtype), 2);
    return config;
  }

  fs::path root_;
};

// --- rotary caches ---------------------------------------------------------

TEST(RopeCachesTest, DefaultTableIsCosSinOfPositionTimesInverseFrequency) {
  checkpoint::Hparams h;
  h.head_dim = 16;
  json config = {{"max_position_embeddings", 64}, {"rope_theta", 500.0}};
  auto spec = ReadRopeSpec(config, h);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->rotary_dim, 16);
  EXPECT_FALSE(spec->longrope);
  RopeTable t = ComputeRopeTable(*spec, false);
  ASSERT_EQ(t.rows, 64);
  ASSERT_EQ(t.cols, 8);
  for (int p : {0, 1, 17, 63}) {
    for (int i = 0; i < 8; ++i) {
      const double angle = p / std::pow(500.0, 2.0 * i / 16);
      EXPECT_NEAR(t.cos[p * 8 + i], std::cos(angle), 2e-5) << p << "," << i;
      EXPECT_NEAR(t.sin[p * 8 + i], std::sin(angle), 2e-5) << p << "," << i;
    }
  }
}

TEST(RopeCachesTest, LongRopeHasTwoTablesScaledByTheDerivedFactor) {
  checkpoint::Hparams h;
  h.head_dim = 32;
  json config = {{"max_position_embeddings", 1024},
                 {"original_max_position_embeddings", 64},
                 {"partial_rotary_factor", 0.5},
                 {"rope_scaling",
                  {{"type", "longrope"},
                   {"short_factor", {1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5}},
                   {"long_factor", {2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0}}}}};
  auto spec = ReadRopeSpec(config, h);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->rotary_dim, 16);
  const double mscale = std::sqrt(1 + std::log(1024.0 / 64) / std::log(64.0));
  EXPECT_NEAR(spec->short_mscale, mscale, 1e-6);
  EXPECT_NEAR(spec->long_mscale, mscale, 1e-6);
  RopeTable small = ComputeRopeTable(*spec, false), large = ComputeRopeTable(*spec, true);
  EXPECT_EQ(small.rows, 64);
  EXPECT_EQ(large.rows, 1024);
  const double inv_small = 1.0 / (2.5 * std::pow(10000.0, 6.0 / 16));
  const double inv_large = 1.0 / (5.0 * std::pow(10000.0, 6.0 / 16));
  EXPECT_NEAR(small.cos[40 * 8 + 3], std::cos(40 * inv_small) * mscale, 2e-5);
  EXPECT_NEAR(large.sin[900 * 8 + 3], std::sin(900 * inv_large) * mscale, 2e-4);
  // Given mscales win over the derived one.
  config["rope_scaling"]["short_mscale"] = 1.25;
  spec = ReadRopeSpec(config, h);
  ASSERT_TRUE(spec.ok());
  EXPECT_FLOAT_EQ(spec->short_mscale, 1.25f);
}

TEST(RopeCachesTest, RefusesWhatTheExportCannotExpress) {
  checkpoint::Hparams h;
  h.head_dim = 16;
  json config = {{"max_position_embeddings", 64}, {"rope_scaling", {{"rope_type", "yarn"}}}};
  EXPECT_THAT(ReadRopeSpec(config, h).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "'yarn' is not supported"));
  config["rope_scaling"] = {{"type", "longrope"}, {"short_factor", {1.0}}, {"long_factor", {1.0}}};
  config["original_max_position_embeddings"] = 32;
  EXPECT_THAT(ReadRopeSpec(config, h).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "short_factor has 1 values"));
  config.erase("rope_scaling");
  config["partial_rotary_factor"] = 1.5;
  EXPECT_THAT(ReadRopeSpec(config, h).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "partial_rotary_factor"));
}

// --- genai_config.json -----------------------------------------------------

// The keys ONNX Runtime GenAI's config parser (src/config.cpp) accepts in each
// object the export writes; any other key makes the runtime refuse the file.
const std::map<std::string, std::set<std::string>>& AcceptedKeys() {
  static const auto* keys = new std::map<std::string, std::set<std::string>>{
      {"", {"model", "search", "speculative", "engine"}},
      {"model",
       {"type", "tokenizer_dir", "vocab_size", "context_length", "pad_token_id", "eos_token_id",
        "bos_token_id", "decoder_start_token_id", "sep_token_id", "encoder", "decoder", "embedding",
        "vision", "speech"}},
      {"model.decoder",
       {"filename", "hidden_size", "num_attention_heads", "num_hidden_layers",
        "num_key_value_heads", "head_size", "session_options", "run_options", "inputs", "outputs",
        "sliding_window", "pipeline", "layer_types"}},
      {"model.decoder.session_options",
       {"log_id", "enable_profiling", "intra_op_num_threads", "inter_op_num_threads",
        "log_severity_level", "enable_cpu_mem_arena", "enable_mem_pattern",
        "graph_optimization_level", "custom_ops_library", "provider_options"}},
      {"model.decoder.inputs",
       {"input_ids", "inputs_embeds", "attention_mask", "position_ids", "past_key_names",
        "past_value_names", "past_names", "past_sequence_length", "current_sequence_length",
        "total_sequence_length"}},
      {"model.decoder.outputs",
       {"logits", "present_key_names", "present_value_names", "present_names", "hidden_states"}},
      {"search",
       {"min_length", "max_length", "batch_size", "num_beams", "num_return_sequences", "top_k",
        "top_p", "temperature", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
        "diversity_penalty", "random_seed", "chunk_size", "do_sample", "past_present_share_buffer",
        "early_stopping"}},
  };
  return *keys;
}

void ExpectAccepted(const nlohmann::ordered_json& j, const std::string& path) {
  auto it = AcceptedKeys().find(path);
  ASSERT_NE(it, AcceptedKeys().end()) << "an object at '" << path << "' is not expected";
  for (const auto& [key, value] : j.items()) {
    EXPECT_TRUE(it->second.count(key))
        << "'" << path << "' has key '" << key << "', which the GenAI runtime refuses";
    if (value.is_object()) ExpectAccepted(value, path.empty() ? key : path + "." + key);
  }
}

TEST_F(GenaiTest, GenaiConfigHoldsOnlyAcceptedKeysAndConfigValues) {
  json config = Write("LlamaForCausalLM");
  json generation = {
      {"eos_token_id", {2, 7}}, {"do_sample", true}, {"temperature", 0.6}, {"top_p", 0.9}};
  auto ckpt = checkpoint::Checkpoint::Open(Ckpt());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  auto spec = ReadDecoderSpec(**ckpt);
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto g = GenaiConfig(config, generation, *spec);
  ASSERT_TRUE(g.ok()) << g.status();
  ExpectAccepted(*g, "");
  const auto& m = (*g)["model"];
  EXPECT_EQ(m["type"], "llama");
  EXPECT_EQ(m["vocab_size"], config["vocab_size"]);
  EXPECT_EQ(m["context_length"], config["max_position_embeddings"]);
  EXPECT_EQ(m["decoder"]["hidden_size"], config["hidden_size"]);
  EXPECT_EQ(m["decoder"]["num_attention_heads"], config["num_attention_heads"]);
  EXPECT_EQ(m["decoder"]["num_key_value_heads"], config["num_key_value_heads"]);
  EXPECT_EQ(m["decoder"]["num_hidden_layers"], config["num_hidden_layers"]);
  EXPECT_EQ(m["decoder"]["head_size"], 16);
  EXPECT_EQ(m["eos_token_id"], json({2, 7}));  // generation_config wins
  EXPECT_EQ(m["pad_token_id"], 2);             // none given: the first eos
  EXPECT_EQ(m["bos_token_id"], 1);
  EXPECT_EQ((*g)["search"]["do_sample"], true);
  EXPECT_DOUBLE_EQ((*g)["search"]["temperature"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ((*g)["search"]["top_p"].get<double>(), 0.9);
  EXPECT_EQ((*g)["search"]["top_k"], 50);
  EXPECT_EQ((*g)["search"]["max_length"], config["max_position_embeddings"]);

  config.erase("eos_token_id");
  EXPECT_THAT(GenaiConfig(config, json::object(), *spec).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "no eos_token_id"));
}

// --- the decoder graph -----------------------------------------------------

const onnx::NodeProto* FindNode(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& n : g.node()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

TEST_F(GenaiTest, GraphHasTheBuilderInterfaceAndNodes) {
  Write("Qwen2ForCausalLM");  // separate q/k/v with biases, GQA 4/2
  auto ckpt = checkpoint::Checkpoint::Open(Ckpt());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  auto spec = ReadDecoderSpec(**ckpt);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const RunContext ctx;  // outlives the model, whose weights it would make
  auto model = BuildDecoderGraph(**ckpt, *spec, Ckpt(), ctx);
  ASSERT_TRUE(model.ok()) << model.status();
  const onnx::GraphProto& g = (*model)->proto().graph();
  std::vector<std::string> inputs, outputs;
  for (const auto& v : g.input()) inputs.push_back(v.name());
  for (const auto& v : g.output()) outputs.push_back(v.name());
  EXPECT_THAT(inputs, ::testing::ElementsAre("input_ids", "attention_mask", "past_key_values.0.key",
                                             "past_key_values.1.key", "past_key_values.0.value",
                                             "past_key_values.1.value"));
  EXPECT_THAT(outputs, ::testing::ElementsAre("logits", "present.0.key", "present.1.key",
                                              "present.0.value", "present.1.value"));
  const onnx::NodeProto* gqa = FindNode(g, "/model/layers.1/attn/GroupQueryAttention");
  ASSERT_NE(gqa, nullptr);
  EXPECT_EQ(gqa->domain(), "com.microsoft");
  EXPECT_EQ(gqa->input(3), "past_key_values.1.key");
  EXPECT_EQ(gqa->output(2), "present.1.value");
  std::map<std::string, int64_t> attrs;
  for (const auto& a : gqa->attribute()) attrs[a.name()] = a.i();
  EXPECT_EQ(attrs["num_heads"], 4);
  EXPECT_EQ(attrs["kv_num_heads"], 2);
  EXPECT_EQ(attrs["do_rotary"], 1);
  EXPECT_EQ(attrs["local_window_size"], -1);
  EXPECT_NE(FindNode(g, "/model/layers.0/attn/qkv_proj/Add"), nullptr);  // Qwen2 biases
  EXPECT_NE(FindNode(g, "/model/layers.0/input_layernorm/LayerNorm"), nullptr);
  EXPECT_NE(FindNode(g, "/model/layers.1/input_layernorm/SkipLayerNorm"), nullptr);
  EXPECT_NE(FindNode(g, "/model/layers.2/final_norm_layernorm/SkipLayerNorm"), nullptr);
  EXPECT_EQ(FindNode(g, "/model/rope_caches_subgraph/If"), nullptr);  // no LongRoPE
  // The graph is built without reading weights: every initializer is deferred.
  for (const auto& t : g.initializer()) {
    EXPECT_EQ(t.data_location(), onnx::TensorProto::EXTERNAL) << t.name();
    EXPECT_FALSE(t.has_raw_data()) << t.name();
  }
}

TEST_F(GenaiTest, RefusesMissingAndMisshapenTensorsByName) {
  json config = TinyConfig("LlamaForCausalLM");
  config["eos_token_id"] = 2;
  auto tensors = TinyTensors(config);
  std::erase_if(tensors,
                [](const auto& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; });
  WriteCheckpoint(Ckpt(), config, tensors);
  Recipe r;
  r.format = ModelFormat::kOnnx;
  r.precision = Precision::kFp32;
  const std::string out = (root_ / "out").string();
  EXPECT_THAT(core::Run(r, Ckpt(), out).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "model.layers.1.mlp.up_proj.weight"));
  // Nothing is left behind: no folder, no staging folder.
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(root_)) {
    EXPECT_EQ(e.path().filename(), "ckpt") << e.path();
  }

  fs::remove_all(Ckpt());
  fs::create_directories(Ckpt());
  tensors = TinyTensors(config);
  for (auto& t : tensors) {
    if (t.name == "model.layers.0.self_attn.k_proj.weight") t.shape = {16, 64};
  }
  WriteCheckpoint(Ckpt(), config, tensors);
  EXPECT_THAT(core::Run(r, Ckpt(), out).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "'model.layers.0.self_attn.k_proj.weight' has shape [16, 64]; config.json "
                       "implies [32, 64]"));
}

// Reads an initializer of a saved fp32 folder as floats (inline or in
// model.onnx.data).
// An initializer's stored bytes (inline or in model.onnx.data) and type.
std::string ReadInitializerBytes(const fs::path& dir, const std::string& name,
                                 int32_t* type = nullptr) {
  onnx::ModelProto m;
  std::ifstream in(dir / "model.onnx", std::ios::binary);
  EXPECT_TRUE(m.ParseFromIstream(&in));
  for (const auto& t : m.graph().initializer()) {
    if (t.name() != name) continue;
    if (type != nullptr) *type = t.data_type();
    if (t.has_raw_data()) return t.raw_data();  // small tensors stay inline
    int64_t offset = 0, length = 0;
    for (const auto& kv : t.external_data()) {
      if (kv.key() == "offset") offset = std::stoll(kv.value());
      if (kv.key() == "length") length = std::stoll(kv.value());
    }
    std::ifstream data(dir / "model.onnx.data", std::ios::binary);
    data.seekg(offset);
    std::string bytes(static_cast<size_t>(length), '\0');
    data.read(bytes.data(), length);
    return bytes;
  }
  ADD_FAILURE() << "no initializer " << name;
  return {};
}

std::vector<float> ReadInitializer(const fs::path& dir, const std::string& name) {
  const std::string bytes = ReadInitializerBytes(dir, name);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

TEST_F(GenaiTest, WeightsArePackedAndTransposedWhileSaving) {
  Write("LlamaForCausalLM", 2, "F32");
  Recipe r;
  r.format = ModelFormat::kOnnx;
  r.precision = Precision::kFp32;
  const fs::path out = root_ / "out";
  auto report = core::Run(r, Ckpt(), out.string());
  ASSERT_TRUE(report.ok()) << report.status();
  for (const char* f : {"model.onnx", "model.onnx.data", "genai_config.json"}) {
    EXPECT_TRUE(fs::exists(out / f)) << f;
  }
  // qkv: [hidden 64, q 64 + k 32 + v 32]; column c of the packed matrix is
  // row c of q_proj, then of k_proj, then of v_proj.
  std::vector<float> qkv = ReadInitializer(out, "model.layers.1.attn.qkv_proj.MatMul.weight");
  ASSERT_EQ(qkv.size(), 64u * 128);
  const std::string p = "model.layers.1.self_attn.";
  for (int in : {0, 5, 63}) {
    EXPECT_EQ(qkv[in * 128 + 3], FakeValue(p + "q_proj.weight", 3 * 64 + in));
    EXPECT_EQ(qkv[in * 128 + 64 + 7], FakeValue(p + "k_proj.weight", 7 * 64 + in));
    EXPECT_EQ(qkv[in * 128 + 96 + 31], FakeValue(p + "v_proj.weight", 31 * 64 + in));
  }
  std::vector<float> down = ReadInitializer(out, "model.layers.0.mlp.down_proj.MatMul.weight");
  ASSERT_EQ(down.size(), 96u * 64);
  EXPECT_EQ(down[10 * 64 + 20], FakeValue("model.layers.0.mlp.down_proj.weight", 20 * 96 + 10));
  std::vector<float> norm = ReadInitializer(out, "model.layers.2.final_norm_layernorm.weight");
  ASSERT_EQ(norm.size(), 64u);
  EXPECT_EQ(norm[9], FakeValue("model.norm.weight", 9));
}

// An FP16 folder's weights are the FP32 folder's, narrowed by
// FloatToHalfSpan, bit for bit, from float32, float16 and bfloat16
// checkpoints (made from the checkpoint's rows, transposed where MatMul
// reads them, without float32 bytes between), and the report's counts are
// what that narrowing changed.
// Sets element `index` of checkpoint tensor `name` (F32 or BF16) to `value`,
// in whichever shard holds it.
void PokeCheckpointValue(const fs::path& dir, const std::string& name, int64_t index, float value) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".safetensors") continue;
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    uint64_t header_len = 0;
    f.read(reinterpret_cast<char*>(&header_len), 8);
    std::string header(header_len, '\0');
    f.read(header.data(), static_cast<std::streamsize>(header_len));
    const json h = json::parse(header);
    if (!h.contains(name)) continue;
    const bool bf16 = h[name]["dtype"] == "BF16";
    const int64_t at = 8 + static_cast<int64_t>(header_len) +
                       h[name]["data_offsets"][0].get<int64_t>() + index * (bf16 ? 2 : 4);
    f.seekp(at);
    uint32_t bits;
    std::memcpy(&bits, &value, 4);
    if (bf16) {
      const uint16_t high = static_cast<uint16_t>(bits >> 16);
      f.write(reinterpret_cast<const char*>(&high), 2);
    } else {
      f.write(reinterpret_cast<const char*>(&bits), 4);
    }
    ASSERT_TRUE(f.good()) << entry.path();
    return;
  }
  ADD_FAILURE() << "no tensor " << name;
}

TEST_F(GenaiTest, Fp16WeightsAreTheFp32WeightsNarrowed) {
  for (const char* dtype : {"F32", "F16", "BF16"}) {
    fs::remove_all(Ckpt());
    fs::create_directories(Ckpt());
    Write("Phi3ForCausalLM", 2, dtype);
    if (std::string(dtype) != "F16") {
      // Values FP16 flushes to zero (a weight beyond its range would keep
      // its MatMul in FP32), in a transposed weight (down_proj) and a plain
      // one (the embedding), and one at the edge of its range.
      for (const char* w : {"model.layers.1.mlp.down_proj.weight", "model.embed_tokens.weight"}) {
        PokeCheckpointValue(Ckpt(), w, 5, 1.0e-9f);
        PokeCheckpointValue(Ckpt(), w, 77, -2.0e-8f);
        PokeCheckpointValue(Ckpt(), w, 90, 60000.0f);
      }
    }
    Recipe r;
    r.format = ModelFormat::kOnnx;
    r.precision = Precision::kFp32;
    const fs::path out32 = root_ / absl::StrCat("fp32-", dtype);
    const fs::path out16 = root_ / absl::StrCat("fp16-", dtype);
    ASSERT_TRUE(core::Run(r, Ckpt(), out32.string()).ok()) << dtype;
    r.precision = Precision::kFp16;
    auto report = core::Run(r, Ckpt(), out16.string());
    ASSERT_TRUE(report.ok()) << dtype << " " << report.status();
    onnx::ModelProto m;
    std::ifstream in(out16 / "model.onnx", std::ios::binary);
    ASSERT_TRUE(m.ParseFromIstream(&in));
    int compared = 0;
    NarrowingStats counts;
    for (const auto& t : m.graph().initializer()) {
      if (t.data_type() != onnx::TensorProto::FLOAT16 || !absl::StrContains(t.name(), "weight")) {
        continue;
      }
      int32_t type32 = 0;
      const std::string wide = ReadInitializerBytes(out32, t.name(), &type32);
      ASSERT_EQ(type32, onnx::TensorProto::FLOAT) << t.name();
      const size_t n = wide.size() / 4;
      std::vector<float> f(n);
      std::memcpy(f.data(), wide.data(), n * 4);
      std::vector<uint16_t> want(n);
      NarrowingStats tensor_counts;
      FloatToHalfSpan_ref(f.data(), want.data(), n, &tensor_counts);
      counts.clamped += tensor_counts.clamped;
      counts.flushed += tensor_counts.flushed;
      const std::string got = ReadInitializerBytes(out16, t.name());
      ASSERT_EQ(got.size(), n * 2) << t.name();
      EXPECT_EQ(std::memcmp(got.data(), want.data(), n * 2), 0) << dtype << " " << t.name();
      bool reported = false;
      for (const TensorReport& e : report->tensors) {
        if (e.name != t.name()) continue;
        reported = true;
        EXPECT_EQ(e.values_clamped, tensor_counts.clamped) << dtype << " " << t.name();
        EXPECT_EQ(e.values_flushed, tensor_counts.flushed) << dtype << " " << t.name();
      }
      EXPECT_TRUE(reported) << t.name();
      ++compared;
    }
    // Embedding, LM head, per layer: qkv, o, gate/up, down (2 layers), norms.
    EXPECT_GE(compared, 10) << dtype;
    EXPECT_EQ(counts.clamped, 0u) << dtype;
    EXPECT_EQ(counts.flushed, std::string(dtype) == "F16" ? 0u : 4u) << dtype;
  }
}

TEST_F(GenaiTest, Phi3GateUpIsSplitAndLongRopeGetsAnIf) {
  json config = TinyConfig("Phi3ForCausalLM", 4);
  config["eos_token_id"] = 2;
  config["max_position_embeddings"] = 256;
  config["original_max_position_embeddings"] = 64;
  config["rope_scaling"] = {{"type", "longrope"},
                            {"short_factor", {1, 1, 1, 1, 1, 1, 1, 1}},
                            {"long_factor", {2, 2, 2, 2, 2, 2, 2, 2}}};
  WriteCheckpoint(Ckpt(), config, TinyTensors(config));
  Recipe r;
  r.format = ModelFormat::kOnnx;
  r.precision = Precision::kFp32;
  const fs::path out = root_ / "out";
  ASSERT_TRUE(core::Run(r, Ckpt(), out.string()).ok());
  std::vector<float> up = ReadInitializer(out, "model.layers.0.mlp.up_proj.MatMul.weight");
  ASSERT_EQ(up.size(), 64u * 96);
  // up is rows [96, 192) of gate_up_proj.
  EXPECT_EQ(up[5 * 96 + 2], FakeValue("model.layers.0.mlp.gate_up_proj.weight", (96 + 2) * 64 + 5));
  EXPECT_EQ(ReadInitializer(out, "cos_cache_large").size(), 256u * 8);
  EXPECT_EQ(ReadInitializer(out, "sin_cache_small").size(), 64u * 8);
}

TEST_F(GenaiTest, RecipeDefaultsAreTheModelBuilders) {
  Recipe r;
  r.precision = Precision::kInt4;
  Recipe g = GenaiRecipe(r);
  EXPECT_EQ(g.accuracy_level, 4);
  EXPECT_EQ(g.lm_head, LmHeadMode::kInt4);
  r.accuracy_level = 0;
  r.lm_head = LmHeadMode::kFloat;
  g = GenaiRecipe(r);
  EXPECT_EQ(g.accuracy_level, 0);  // an explicit 0 stays
  EXPECT_EQ(g.lm_head, LmHeadMode::kFloat);
  r.precision = Precision::kInt8;
  r.lm_head.reset();
  g = GenaiRecipe(r);
  EXPECT_EQ(g.int8_mode, Int8Mode::kMatMulNBits);
  EXPECT_EQ(g.lm_head, LmHeadMode::kInt8);
  r.precision = Precision::kFp16;
  EXPECT_FALSE(GenaiRecipe(r).keep_io_types);  // FP16 I/O and KV cache
}

TEST_F(GenaiTest, TiedInt4SharesTheLmHeadCodes) {
  Write("LlamaForCausalLM", 2, "BF16", /*tied=*/true);
  Recipe r;
  r.format = ModelFormat::kOnnx;
  r.precision = Precision::kInt4;
  const fs::path out = root_ / "out";
  auto report = core::Run(r, Ckpt(), out.string());
  ASSERT_TRUE(report.ok()) << report.status();
  onnx::ModelProto m;
  std::ifstream in(out / "model.onnx", std::ios::binary);
  ASSERT_TRUE(m.ParseFromIstream(&in));
  const onnx::NodeProto* gbq = FindNode(m.graph(), "/model/embed_tokens/GatherBlockQuantized");
  ASSERT_NE(gbq, nullptr);
  const onnx::NodeProto* reshape = FindNode(m.graph(), "/model/embed_tokens/Reshape");
  ASSERT_NE(reshape, nullptr);
  EXPECT_EQ(reshape->input(0), "lm_head.MatMul.weight_Q4");
  for (const auto& t : m.graph().initializer()) {
    EXPECT_NE(t.name(), "lm_head.MatMul.weight") << "the float table should be gone";
  }
  EXPECT_THAT(absl::StrJoin(report->notes, "\n"), HasSubstr("GatherBlockQuantized"));

  // Asymmetric: the table stays float, and the note says why.
  fs::remove_all(out);
  r.symmetric = false;
  report = core::Run(r, Ckpt(), out.string());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(absl::StrJoin(report->notes, "\n"), HasSubstr("zero points"));
}

TEST_F(GenaiTest, OutputFolderMustBeNew) {
  Write("LlamaForCausalLM");
  fs::create_directories(root_ / "out");
  std::ofstream(root_ / "out" / "keep.txt") << "x";
  Recipe r;
  r.format = ModelFormat::kOnnx;
  r.precision = Precision::kFp16;
  EXPECT_THAT(core::Run(r, Ckpt(), (root_ / "out").string()).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "is not an empty folder"));
  EXPECT_TRUE(fs::exists(root_ / "out" / "keep.txt"));
}

}  // namespace
}  // namespace quantd::core::genai
