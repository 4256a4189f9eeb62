// Checkpoint folders and the checkpoint -> GGUF source / writer: shard and
// index consistency, architecture / tensor / rope-scaling refusals, tensor
// mapping (renames, q/k permutation, tied embeddings, partial rotary),
// converter type rules, streamed atomic output.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/mapped_file.h"
#include "quantd/core/base/thread_pool.h"
#include "quantd/core/checkpoint/checkpoint.h"
#include "quantd/core/checkpoint/checkpoint_gguf.h"
#include "quantd/core/gguf/gguf_file.h"
#include "quantd/core/gguf/gguf_run.h"
#include "quantd/core/run.h"
#include "quantd/testing/status_matchers.h"
#include "test_checkpoints.h"

namespace quantd::core::checkpoint {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::quantd::testing::StatusIs;
using testing::FakeTensor;
using testing::FakeValue;
using testing::SafetensorsBytes;
using testing::TinyConfig;
using testing::TinyTensors;
using testing::WriteBytes;
using testing::WriteCheckpoint;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("checkpoint_test_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string Dir(const std::string& name = "tiny-model") const { return (root_ / name).string(); }

  absl::StatusOr<std::unique_ptr<CheckpointGgufSource>> OpenSource(const std::string& dir) {
    return CheckpointGgufSource::Open(dir, CheckpointGgufOptions{});
  }
  static const gguf::GgufKv* FindKv(const CheckpointGgufSource& s, const std::string& key) {
    for (const auto& kv : s.kvs()) {
      if (kv.key == key) return &kv;
    }
    return nullptr;
  }
  static int FindTensor(const CheckpointGgufSource& s, const std::string& name) {
    for (size_t i = 0; i < s.tensors().size(); ++i) {
      if (s.tensors()[i].name == name) return static_cast<int>(i);
    }
    return -1;
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

  fs::path root_;
};

// --- folder and shards ---------------------------------------------------------

TEST_F(CheckpointTest, ReadsShardsInFileOrderAndTensorsByName) {
  const json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config, "BF16"), 3);
  auto ckpt = Checkpoint::Open(Dir());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->ShardNames(), (std::vector<std::string>{"model-00001-of-00003.safetensors",
                                                             "model-00002-of-00003.safetensors",
                                                             "model-00003-of-00003.safetensors"}));
  EXPECT_EQ((*ckpt)->tensors().size(), TinyTensors(config).size());
  for (size_t i = 1; i < (*ckpt)->tensors().size(); ++i) {
    const auto& a = (*ckpt)->tensors()[i - 1];
    const auto& b = (*ckpt)->tensors()[i];
    if (a.shard == b.shard) {
      EXPECT_LT(a.tensor->name, b.tensor->name);
    }
  }
  EXPECT_TRUE(IsCheckpointDir(Dir()));
  EXPECT_FALSE(IsCheckpointDir((fs::path(Dir()) / "config.json").string()));
}

TEST_F(CheckpointTest, MissingConfigOrWeightsIsNotFound) {
  fs::create_directories(Dir());
  EXPECT_THAT(Checkpoint::Open(Dir()).status(),
              StatusIs(absl::StatusCode::kNotFound, "config.json"));
  WriteBytes((fs::path(Dir()) / "config.json").string(), TinyConfig("LlamaForCausalLM").dump());
  EXPECT_THAT(Checkpoint::Open(Dir()).status(),
              StatusIs(absl::StatusCode::kNotFound, "no model.safetensors"));
}

TEST_F(CheckpointTest, MalformedConfigIsInvalidArgument) {
  fs::create_directories(Dir());
  WriteBytes((fs::path(Dir()) / "config.json").string(), "{\"hidden_size\": ");
  EXPECT_THAT(Checkpoint::Open(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "config.json"));
  WriteBytes((fs::path(Dir()) / "config.json").string(),
             std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_THAT(Checkpoint::Open(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "nests deeper"));
}

TEST_F(CheckpointTest, MissingShardIsNotFoundNamingItAndATensorItHolds) {
  const json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config), 2);
  fs::remove(fs::path(Dir()) / "model-00002-of-00002.safetensors");
  const auto st = Checkpoint::Open(Dir()).status();
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kNotFound, "model-00002-of-00002.safetensors"));
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kNotFound, "it holds tensor"));
}

TEST_F(CheckpointTest, TruncatedShardIsDataLoss) {
  const json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config), 2);
  const fs::path shard = fs::path(Dir()) / "model-00001-of-00002.safetensors";
  fs::resize_file(shard, fs::file_size(shard) - 100);
  EXPECT_THAT(Checkpoint::Open(Dir()).status(),
              StatusIs(absl::StatusCode::kDataLoss, "model-00001-of-00002.safetensors: truncated"));
}

TEST_F(CheckpointTest, IndexNamingTheWrongShardIsRefused) {
  const json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config), 2);
  const std::string index_path = (fs::path(Dir()) / "model.safetensors.index.json").string();
  json index = json::parse(std::ifstream(index_path));
  index["weight_map"]["model.norm.weight"] =
      "model-00001-of-00002.safetensors";  // it is in shard 2
  WriteBytes(index_path, index.dump());
  const auto st = Checkpoint::Open(Dir()).status();
  EXPECT_THAT(
      st, StatusIs(absl::StatusCode::kInvalidArgument, "places tensor 'model.norm.weight' in "));
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument, "but it is stored in"));
}

TEST_F(CheckpointTest, IndexNamingATensorNoShardHoldsIsRefused) {
  const json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config), 2);
  const std::string index_path = (fs::path(Dir()) / "model.safetensors.index.json").string();
  json index = json::parse(std::ifstream(index_path));
  index["weight_map"]["model.extra.weight"] = "model-00002-of-00002.safetensors";
  WriteBytes(index_path, index.dump());
  EXPECT_THAT(Checkpoint::Open(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "'model.extra.weight'"));
}

TEST_F(CheckpointTest, ShardTensorMissingFromTheIndexIsRefused) {
  const json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config), 2);
  const std::string index_path = (fs::path(Dir()) / "model.safetensors.index.json").string();
  json index = json::parse(std::ifstream(index_path));
  index["weight_map"].erase("lm_head.weight");
  WriteBytes(index_path, index.dump());
  EXPECT_THAT(Checkpoint::Open(Dir()).status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                                         "tensor 'lm_head.weight' is not listed"));
}

TEST_F(CheckpointTest, IndexWithPathTraversalIsRefused) {
  const json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config), 2);
  const std::string index_path = (fs::path(Dir()) / "model.safetensors.index.json").string();
  json index = json::parse(std::ifstream(index_path));
  index["weight_map"]["lm_head.weight"] = "../model-00001-of-00002.safetensors";
  WriteBytes(index_path, index.dump());
  EXPECT_THAT(Checkpoint::Open(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a shard file name"));
}

TEST_F(CheckpointTest, TensorStoredInTwoShardsIsRefused) {
  const json config = TinyConfig("LlamaForCausalLM");
  std::vector<FakeTensor> tensors = TinyTensors(config);
  WriteCheckpoint(Dir(), config, tensors, 2);
  // Shard 2 also gets tensor 0 (which the index places in shard 1).
  std::vector<FakeTensor> second;
  for (size_t k = 1; k < tensors.size(); k += 2) second.push_back(tensors[k]);
  second.push_back(tensors[0]);
  WriteBytes((fs::path(Dir()) / "model-00002-of-00002.safetensors").string(),
             SafetensorsBytes(second));
  EXPECT_THAT(Checkpoint::Open(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "tensor '" + tensors[0].name + "' is stored twice"));
}

// --- architecture, tensors, rope scaling -----------------------------------------

TEST_F(CheckpointTest, UnknownArchitectureIsRefusedListingTheSupportedOnes) {
  json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config));
  config["architectures"] = {"GPTNeoXForCausalLM"};
  WriteBytes((fs::path(Dir()) / "config.json").string(), config.dump());
  const auto st = OpenSource(Dir()).status();
  EXPECT_THAT(st,
              StatusIs(absl::StatusCode::kInvalidArgument, "GPTNeoXForCausalLM is not supported"));
  EXPECT_THAT(st,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "Phi3ForCausalLM, LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"));
}

TEST_F(CheckpointTest, MissingTensorIsRefusedWithTheShapeConfigImplies) {
  const json config = TinyConfig("LlamaForCausalLM");
  std::vector<FakeTensor> tensors = TinyTensors(config);
  std::erase_if(tensors, [](const FakeTensor& t) {
    return t.name == "model.layers.1.self_attn.k_proj.weight";
  });
  WriteCheckpoint(Dir(), config, tensors);
  EXPECT_THAT(OpenSource(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "no tensor 'model.layers.1.self_attn.k_proj.weight'; config.json implies "
                       "one of shape [32, 64]"));
}

TEST_F(CheckpointTest, MisShapedTensorIsRefusedWithBothShapes) {
  const json config = TinyConfig("Phi3ForCausalLM");
  std::vector<FakeTensor> tensors = TinyTensors(config);
  for (auto& t : tensors) {
    if (t.name == "model.layers.0.mlp.gate_up_proj.weight") t.shape = {96, 64};
  }
  WriteCheckpoint(Dir(), config, tensors);
  EXPECT_THAT(OpenSource(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "tensor 'model.layers.0.mlp.gate_up_proj.weight' has shape [96, 64] but "
                       "config.json implies "
                       "[192, 64]"));
}

TEST_F(CheckpointTest, UnexpectedTensorIsRefused) {
  const json config = TinyConfig("LlamaForCausalLM");
  std::vector<FakeTensor> tensors = TinyTensors(config);
  tensors.push_back({"model.layers.2.input_layernorm.weight", {64}});
  WriteCheckpoint(Dir(), config, tensors);
  EXPECT_THAT(OpenSource(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "'model.layers.2.input_layernorm.weight' is not part"));
}

TEST_F(CheckpointTest, UnknownRopeScalingTypeIsRefused) {
  json config = TinyConfig("Phi3ForCausalLM");
  config["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  WriteCheckpoint(Dir(), config, TinyTensors(config));
  EXPECT_THAT(OpenSource(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "type 'dynamic' is not supported"));

  json llama = TinyConfig("LlamaForCausalLM");
  llama["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  WriteCheckpoint(Dir("llama"), llama, TinyTensors(llama));
  EXPECT_THAT(OpenSource(Dir("llama")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "type 'llama3' is not supported"));

  llama["rope_scaling"] = {{"rope_type", "default"}};
  WriteBytes((fs::path(Dir("llama")) / "config.json").string(), llama.dump());
  EXPECT_TRUE(OpenSource(Dir("llama")).ok());

  config["rope_scaling"] = {{"long_factor", {1.0}}};
  WriteBytes((fs::path(Dir()) / "config.json").string(), config.dump());
  EXPECT_THAT(OpenSource(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "has no 'type'"));
}

TEST_F(CheckpointTest, LongRopeFactorsOfTheWrongLengthAreRefused) {
  json config = TinyConfig("Phi3ForCausalLM");
  config["max_position_embeddings"] = 131072;
  config["rope_scaling"] = {
      {"type", "longrope"}, {"long_factor", {1, 2, 3}}, {"short_factor", {1, 2, 3}}};
  WriteCheckpoint(Dir(), config, TinyTensors(config));
  EXPECT_THAT(OpenSource(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "must each hold 8 values"));
}

TEST_F(CheckpointTest, RopeScalingKeysFollowTheArchitecture) {
  auto keys_after = [&](const CheckpointGgufSource& s, const std::string& first) {
    std::vector<std::string> keys;
    bool on = false;
    for (const auto& kv : s.kvs()) {
      on = on || kv.key == first;
      if (on) keys.push_back(kv.key);
    }
    return keys;
  };
  json llama = TinyConfig("LlamaForCausalLM");
  llama["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  llama["head_dim"] = 16;
  WriteCheckpoint(Dir("llama"), llama, TinyTensors(llama));
  auto l = OpenSource(Dir("llama"));
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(keys_after(**l, "llama.block_count"),
            (std::vector<std::string>{
                "llama.block_count", "llama.context_length", "llama.embedding_length",
                "llama.feed_forward_length", "llama.attention.head_count",
                "llama.attention.head_count_kv", "llama.rope.freq_base",
                "llama.attention.layer_norm_rms_epsilon", "llama.attention.key_length",
                "llama.attention.value_length", "general.file_type", "llama.vocab_size",
                "llama.rope.dimension_count", "llama.rope.scaling.type",
                "llama.rope.scaling.factor", "general.quantization_version"}));

  json qwen = TinyConfig("Qwen2ForCausalLM");
  qwen["rope_scaling"] = {
      {"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
  WriteCheckpoint(Dir("qwen"), qwen, TinyTensors(qwen));
  auto q = OpenSource(Dir("qwen"));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(keys_after(**q, "general.file_type"),
            (std::vector<std::string>{
                "general.file_type", "qwen2.rope.scaling.type", "qwen2.rope.scaling.factor",
                "qwen2.rope.scaling.original_context_length", "general.quantization_version"}));
  EXPECT_EQ(FindKv(**q, "qwen2.rope.scaling.original_context_length")->AsInt(), 32768);

  json phi = TinyConfig("Phi3ForCausalLM");
  phi["max_position_embeddings"] = 131072;
  phi["rope_scaling"] = {{"type", "yarn"},
                         {"long_factor", std::vector<double>(8, 2.0)},
                         {"short_factor", std::vector<double>(8, 1.0)}};
  WriteCheckpoint(Dir("phi"), phi, TinyTensors(phi));
  auto p = OpenSource(Dir("phi"));
  ASSERT_TRUE(p.ok()) << p.status();
  const gguf::GgufKv* attn = FindKv(**p, "phi3.rope.scaling.attn_factor");
  ASSERT_NE(attn, nullptr);
  float f;
  std::memcpy(&f, attn->raw.data(), 4);
  EXPECT_EQ(f, static_cast<float>(0.1 * std::log(32.0) + 1.0));
  EXPECT_EQ((*p)->kvs()[1].key,
            "phi3.rope.scaling.attn_factor");  // right after general.architecture
  EXPECT_EQ(FindKv(**p, "phi3.attention.sliding_window")->AsInt(), 2047);
}

TEST_F(CheckpointTest, BadConfigValuesAreRefusedNamingTheKey) {
  json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config));
  config["hidden_size"] = "64";
  WriteBytes((fs::path(Dir()) / "config.json").string(), config.dump());
  EXPECT_THAT(OpenSource(Dir()).status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                                   "config.json: 'hidden_size' is not an integer"));
  config["hidden_size"] = 64;
  config["num_key_value_heads"] = 3;
  WriteBytes((fs::path(Dir()) / "config.json").string(), config.dump());
  EXPECT_THAT(OpenSource(Dir()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "'num_key_value_heads' is 3, which does not divide"));
}

TEST_F(CheckpointTest, TokenizerMetadataGoesBeforeTheQuantizationVersion) {
  const json config = TinyConfig("MistralForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config));
  std::string seen_arch, seen_dir;
  CheckpointGgufOptions options;
  options.tokenizer_kvs = [&](const std::string& dir, const json& cfg,
                              absl::string_view arch) -> absl::StatusOr<std::vector<gguf::GgufKv>> {
    seen_dir = dir;
    seen_arch = std::string(arch);
    EXPECT_EQ(cfg["vocab_size"], 128);
    return std::vector<gguf::GgufKv>{gguf::GgufKv::String("tokenizer.ggml.model", "llama"),
                                     gguf::GgufKv::Uint32("tokenizer.ggml.bos_token_id", 1)};
  };
  auto src = CheckpointGgufSource::Open(Dir(), options);
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ(seen_arch, "MistralForCausalLM");
  EXPECT_EQ(seen_dir, Dir());
  const auto& kvs = (*src)->kvs();
  ASSERT_GE(kvs.size(), 3u);
  EXPECT_EQ(kvs[kvs.size() - 3].key, "tokenizer.ggml.model");
  EXPECT_EQ(kvs[kvs.size() - 2].key, "tokenizer.ggml.bos_token_id");
  EXPECT_EQ(kvs.back().key, "general.quantization_version");
  EXPECT_TRUE((*src)->notes().empty());

  options.tokenizer_kvs = [](const std::string&, const json&,
                             absl::string_view) -> absl::StatusOr<std::vector<gguf::GgufKv>> {
    return absl::NotFoundError("no tokenizer.model");
  };
  EXPECT_THAT(CheckpointGgufSource::Open(Dir(), options).status(),
              StatusIs(absl::StatusCode::kNotFound, "no tokenizer.model"));
}

TEST_F(CheckpointTest, ModelCardMetadataThatIsNotCopiedIsReported) {
  const json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config));
  WriteBytes((fs::path(Dir()) / "README.md").string(), "---\nlicense: mit\n---\n# Tiny\n");
  auto src = OpenSource(Dir());
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_THAT((*src)->notes(), ::testing::Contains(::testing::HasSubstr("model-card metadata")));
  EXPECT_THAT((*src)->notes(), ::testing::Contains(::testing::HasSubstr("no tokenizer metadata")));
}

// --- mapping -------------------------------------------------------------------

TEST_F(CheckpointTest, PhiFourMiniLikeCheckpointHasPartialRopeFactorsAndNoOutputTensor) {
  json config = TinyConfig("Phi3ForCausalLM");
  config["partial_rotary_factor"] = 0.75;
  config["tie_word_embeddings"] = true;
  config["max_position_embeddings"] = 131072;
  std::vector<double> factors(6, 1.5);  // rope dims 12 -> 6 factors
  config["rope_scaling"] = {
      {"type", "longrope"}, {"long_factor", factors}, {"short_factor", factors}};
  WriteCheckpoint(Dir("Phi-4-mini-instruct"), config, TinyTensors(config, "BF16"));
  auto src = OpenSource(Dir("Phi-4-mini-instruct"));
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ(FindKv(**src, "phi3.rope.dimension_count")->AsInt(), 12);  // 16 * 0.75
  EXPECT_EQ(FindTensor(**src, "output.weight"), -1);
  EXPECT_EQ((*src)->tensors()[0].name, "rope_factors_long.weight");
  EXPECT_EQ((*src)->tensors()[0].ne, (std::vector<int64_t>{6}));
  EXPECT_NE(FindKv(**src, "phi3.rope.scaling.attn_factor"), nullptr);
  EXPECT_EQ(FindKv(**src, "general.name")->AsString(), "Phi 4 Mini Instruct");
  EXPECT_EQ(FindKv(**src, "general.basename")->AsString(), "Phi-4");
  EXPECT_EQ(FindKv(**src, "general.size_label")->AsString(), "mini");
  EXPECT_EQ(FindKv(**src, "general.finetune")->AsString(), "instruct");
}

TEST_F(CheckpointTest, LlamaQueryAndKeyRowsArePermutedForGgmlRope) {
  const json config = TinyConfig("LlamaForCausalLM");  // 4 heads, 2 kv heads, head dim 16
  WriteCheckpoint(Dir(), config, TinyTensors(config));
  auto src = OpenSource(Dir());
  ASSERT_TRUE(src.ok()) << src.status();
  for (const auto& [gguf_name, hf_name, heads] :
       {std::tuple<std::string, std::string, int>{"blk.1.attn_q.weight",
                                                  "model.layers.1.self_attn.q_proj.weight", 4},
        {"blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight", 2},
        {"blk.1.attn_v.weight", "model.layers.1.self_attn.v_proj.weight", 0}}) {
    const int idx = FindTensor(**src, gguf_name);
    ASSERT_GE(idx, 0) << gguf_name;
    const auto& info = (*src)->tensors()[static_cast<size_t>(idx)];
    ASSERT_EQ(info.ne[0], 64);
    std::vector<float> rows(static_cast<size_t>(info.Elements()));
    (*src)->ReadRows(static_cast<size_t>(idx), 0, info.Rows(), rows.data());
    for (int64_t r = 0; r < info.Rows(); ++r) {
      // Row 2i+j of a head comes from row j*8+i (head dim 16); v is not permuted.
      const int64_t within = r % 16;
      const int64_t src_row = heads == 0 ? r : r / 16 * 16 + (within % 2) * 8 + within / 2;
      for (int64_t c = 0; c < 64; ++c) {
        ASSERT_EQ(rows[static_cast<size_t>(r * 64 + c)], FakeValue(hf_name, src_row * 64 + c))
            << gguf_name << " row " << r;
      }
    }
  }
}

TEST_F(CheckpointTest, QwenTwoBiasesMapAndStayF32) {
  const json config = TinyConfig("Qwen2ForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config, "F16"));
  auto src = OpenSource(Dir());
  ASSERT_TRUE(src.ok()) << src.status();
  const int bias = FindTensor(**src, "blk.0.attn_k.bias");
  ASSERT_GE(bias, 0);
  EXPECT_EQ((*src)->tensors()[static_cast<size_t>(bias)].ne, (std::vector<int64_t>{32}));
  EXPECT_EQ((*src)->ConverterType(static_cast<size_t>(bias), gguf::FileType::kF16),
            gguf::GgmlType::kF32);
  const int q = FindTensor(**src, "blk.0.attn_q.weight");
  EXPECT_EQ((*src)->ConverterType(static_cast<size_t>(q), gguf::FileType::kBF16),
            gguf::GgmlType::kBF16);
  EXPECT_EQ((*src)->ConverterType(static_cast<size_t>(q), gguf::FileType::kQ8_0),
            gguf::GgmlType::kQ8_0);
  const int norm = FindTensor(**src, "blk.0.ffn_norm.weight");
  EXPECT_EQ((*src)->ConverterType(static_cast<size_t>(norm), gguf::FileType::kQ8_0),
            gguf::GgmlType::kF32);
  // ffn_down rows are 96 wide: whole Q8_0 blocks. Embedding rows are 64: too.
  EXPECT_EQ(FindKv(**src, "general.architecture")->AsString(), "qwen2");
}

TEST_F(CheckpointTest, QEightZeroFallsBackToF16ForRowsThatAreNotWholeBlocks) {
  json config = TinyConfig("LlamaForCausalLM");
  config["intermediate_size"] = 80;  // ffn_down rows: 80 values, not a multiple of 32
  WriteCheckpoint(Dir(), config, TinyTensors(config));
  auto src = OpenSource(Dir());
  ASSERT_TRUE(src.ok()) << src.status();
  const int down = FindTensor(**src, "blk.0.ffn_down.weight");
  EXPECT_EQ((*src)->ConverterType(static_cast<size_t>(down), gguf::FileType::kQ8_0),
            gguf::GgmlType::kF16);
  const int up = FindTensor(**src, "blk.0.ffn_up.weight");
  EXPECT_EQ((*src)->ConverterType(static_cast<size_t>(up), gguf::FileType::kQ8_0),
            gguf::GgmlType::kQ8_0);
}

// --- writing -------------------------------------------------------------------

TEST_F(CheckpointTest, WritesAParseableGgufWithTheSourceValues) {
  const json config = TinyConfig("MistralForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config, "BF16"), 2);
  auto src = OpenSource(Dir());
  ASSERT_TRUE(src.ok()) << src.status();
  const std::string out = (root_ / "out.gguf").string();
  auto report = WriteCheckpointGguf(**src, gguf::FileType::kAllF32, out, RunContext());
  ASSERT_TRUE(report.ok()) << report.status();
  auto mapped = MappedFile::Open(out);
  ASSERT_TRUE(mapped.ok());
  auto parsed = gguf::GgufFile::Parse((*mapped)->bytes());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  // The F32 file is exactly the source's metadata and tensor infos.
  ASSERT_EQ(parsed->kvs().size(), (*src)->kvs().size());
  for (size_t i = 0; i < parsed->kvs().size(); ++i) {
    EXPECT_EQ(parsed->kvs()[i].key, (*src)->kvs()[i].key);
    EXPECT_EQ(parsed->kvs()[i].raw, (*src)->kvs()[i].raw) << parsed->kvs()[i].key;
  }
  for (size_t i = 0; i < parsed->tensors().size(); ++i) {
    EXPECT_EQ(parsed->tensors()[i].name, (*src)->tensors()[i].name);
    EXPECT_EQ(parsed->tensors()[i].offset, (*src)->tensors()[i].offset);
  }
  EXPECT_EQ(parsed->FindKv("general.architecture")->AsString(), "llama");
  EXPECT_EQ(parsed->FindKv("general.name")->AsString(), "Tiny Model");
  // A trailing slash does not change the name; an explicit folder name wins.
  auto slash = OpenSource(Dir() + "/");
  ASSERT_TRUE(slash.ok()) << slash.status();
  EXPECT_EQ(FindKv(**slash, "general.name")->AsString(), "Tiny Model");
  auto named =
      CheckpointGgufSource::Open(Dir(), CheckpointGgufOptions{"Mistral-7B-Instruct-v0.3", nullptr});
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(FindKv(**named, "general.name")->AsString(), "Mistral 7B Instruct v0.3");
  EXPECT_EQ(FindKv(**named, "general.version")->AsString(), "v0.3");
  EXPECT_EQ(parsed->tensors().size(), (*src)->tensors().size());
  const gguf::GgufTensorInfo* norm = parsed->FindTensor("output_norm.weight");
  ASSERT_NE(norm, nullptr);
  const float* values = reinterpret_cast<const float*>((*mapped)->bytes().data() +
                                                       parsed->data_offset() + norm->offset);
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(values[i], Bfloat16ToFloat(FloatToBfloat16(FakeValue("model.norm.weight", i))));
  }
  EXPECT_EQ(report->output_file_bytes, fs::file_size(out));
}

TEST_F(CheckpointTest, CancelledOrRefusedConversionLeavesNoFile) {
  const json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config));
  auto src = OpenSource(Dir());
  ASSERT_TRUE(src.ok()) << src.status();
  const fs::path out_dir = root_ / "out";
  fs::create_directories(out_dir);
  CancelToken cancel;
  int calls = 0;
  ProgressFn progress = [&](const Progress& p) {
    if (p.tensors_done == 3 && ++calls == 1) cancel.Cancel();
  };
  EXPECT_THAT(WriteCheckpointGguf(**src, gguf::FileType::kQ8_0, (out_dir / "o.gguf").string(),
                                  RunContext{.progress = progress, .cancel = &cancel})
                  .status(),
              StatusIs(absl::StatusCode::kCancelled, "cancel"));
  EXPECT_THAT(WriteCheckpointGguf(**src, gguf::FileType::kQ4_K_M, (out_dir / "o.gguf").string(),
                                  RunContext())
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "F32, F16, BF16 or Q8_0"));
  EXPECT_TRUE(fs::is_empty(out_dir));
}

// A NaN in a weight: Q8_0 refuses it naming the GGUF tensor and element, and
// writes nothing; F16 carries it over (a float conversion).
TEST_F(CheckpointTest, NonFiniteWeightIsRefusedWhenQuantized) {
  const json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config));
  const std::string file = (fs::path(Dir()) / "model.safetensors").string();
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  const json header = json::parse(bytes.substr(8, header_size));
  const uint64_t begin = header["model.layers.0.mlp.up_proj.weight"]["data_offsets"][0];
  const float nan = std::nanf("");
  std::memcpy(bytes.data() + 8 + header_size + begin + 4 * 10, &nan, 4);
  WriteBytes(file, bytes);

  auto src = OpenSource(Dir());
  ASSERT_TRUE(src.ok()) << src.status();
  const fs::path out_dir = root_ / "out";
  fs::create_directories(out_dir);
  EXPECT_THAT(
      WriteCheckpointGguf(**src, gguf::FileType::kQ8_0, (out_dir / "o.gguf").string(), RunContext())
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "tensor 'blk.0.ffn_up.weight' element 10 is NaN"));
  EXPECT_TRUE(fs::is_empty(out_dir));
  auto f16 = OpenSource(Dir());
  ASSERT_TRUE(f16.ok()) << f16.status();
  EXPECT_TRUE(
      WriteCheckpointGguf(**f16, gguf::FileType::kF16, (out_dir / "f.gguf").string(), RunContext())
          .ok());
}

TEST_F(CheckpointTest, RunRoutesACheckpointFolderToTheGgufWriter) {
  // A shared checkpoint: it has the tokenizer files a complete conversion reads.
  const std::string shared = std::string(QUANTD_TESTDATA) + "/hf/checkpoints/phi3-tiny-shared";
  Recipe recipe;
  recipe.gguf_type = "F16";
  const std::string out = (root_ / "run.gguf").string();
  auto report = core::Run(recipe, shared, out);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, "gguf");
  EXPECT_EQ(report->precision, "F16");
  EXPECT_GT(report->input_file_bytes, 0u);
  EXPECT_EQ(report->output_file_bytes, fs::file_size(out));

  json config = TinyConfig("Phi3ForCausalLM");
  config["eos_token_id"] = 2;  // genai_config.json needs one
  WriteCheckpoint(Dir(), config, TinyTensors(config, "F16"));
  // llama-quantize's options belong to llama-quantize types only.
  recipe.gguf_type = "Q8_0";
  recipe.pure = true;
  EXPECT_THAT(core::Run(recipe, Dir(), out).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "not to the converter's outtype Q8_0"));
  recipe.pure = false;
  recipe.format = ModelFormat::kOnnx;
  recipe.gguf_type.clear();
  recipe.precision = Precision::kFp16;
  // ONNX goes to the GenAI folder writer, which wants a new folder.
  EXPECT_THAT(
      core::Run(recipe, Dir(), out).status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, "an ONNX GenAI output is a new folder"));
  auto genai = core::Run(recipe, Dir(), (root_ / "genai").string());
  ASSERT_TRUE(genai.ok()) << genai.status();
  EXPECT_EQ(genai->format, "onnx");
  EXPECT_TRUE(fs::exists(root_ / "genai" / "model.onnx.data"));
  EXPECT_TRUE(fs::exists(root_ / "genai" / "genai_config.json"));
}

// A dry run plans the llama-quantize path only: every other conversion of a
// checkpoint (the converter's outtypes, MLX, ONNX GenAI) is refused before
// anything is read or written, and the planned one writes nothing.
TEST_F(CheckpointTest, DryRunPlansOnlyLlamaQuantizeTypes) {
  json config = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir(), config, TinyTensors(config, "F32"));
  const std::string out = (root_ / "out").string();
  Recipe recipe;
  recipe.dry_run = true;
  for (const char* outtype : {"F32", "F16", "BF16", "Q8_0"}) {
    recipe.gguf_type = outtype;
    EXPECT_THAT(core::Run(recipe, Dir(), out).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, "written by the checkpoint converter"))
        << outtype;
  }
  recipe.gguf_type.clear();
  recipe.format = ModelFormat::kMlx;
  EXPECT_THAT(core::Run(recipe, Dir(), out).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "writes an MLX folder"));
  recipe.format = ModelFormat::kAuto;
  recipe.precision = Precision::kInt4;
  EXPECT_THAT(core::Run(recipe, Dir(), out).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "ONNX Runtime GenAI folder"));
  EXPECT_FALSE(fs::exists(out));
  recipe.precision = Precision::kUnspecified;
  recipe.gguf_type = "Q4_K_M";
  // A shared checkpoint: it has the tokenizer files a complete conversion reads.
  auto plan =
      core::Run(recipe, std::string(QUANTD_TESTDATA) + "/hf/checkpoints/llama-tiny-shared", out);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->dry_run);
  EXPECT_FALSE(plan->plan.empty());
  EXPECT_FALSE(fs::exists(out));
  // An ONNX or GGUF input: only a gguf_type has a plan.
  EXPECT_TRUE(core::CheckDryRun(recipe, /*checkpoint_input=*/false).ok());
  recipe.gguf_type.clear();
  recipe.precision = Precision::kFp16;
  EXPECT_THAT(core::CheckDryRun(recipe, /*checkpoint_input=*/false),
              StatusIs(absl::StatusCode::kInvalidArgument, "this is an ONNX conversion"));
  recipe.dry_run = false;
  EXPECT_TRUE(core::CheckDryRun(recipe, /*checkpoint_input=*/false).ok());
}

// --- one step to llama-quantize types ------------------------------------------

// Checkpoint -> TYPE in one step equals checkpoint -> F32 file -> TYPE, for
// permuted (Llama q/k), sharded BF16 weights and Phi-3's fused tensors with
// LongRoPE factors, at 1 and 3 threads, with llama-quantize's options.
TEST_F(CheckpointTest, OneStepEqualsConvertingToF32ThenQuantizing) {
  ThreadPool pool(2);
  RunContext three;
  three.pool = &pool;
  three.parallelism = 3;
  json phi3 = TinyConfig("Phi3ForCausalLM", 4);
  phi3["max_position_embeddings"] = 4096;
  phi3["original_max_position_embeddings"] = 1024;
  phi3["rope_scaling"] = {{"type", "longrope"},
                          {"long_factor", std::vector<double>(8, 1.5)},
                          {"short_factor", std::vector<double>(8, 1.25)}};
  const json llama = TinyConfig("LlamaForCausalLM");
  WriteCheckpoint(Dir("llama-model"), llama, TinyTensors(llama, "BF16"), 2);
  WriteCheckpoint(Dir("phi3-model"), phi3, TinyTensors(phi3, "F16"));
  for (const std::string name : {"llama-model", "phi3-model"}) {
    auto src = OpenSource(Dir(name));
    ASSERT_TRUE(src.ok()) << src.status();
    const std::string f32 = (root_ / (name + "-f32.gguf")).string();
    ASSERT_TRUE(WriteCheckpointGguf(**src, gguf::FileType::kAllF32, f32, RunContext()).ok());
    for (const char* type : {"Q4_K_M", "Q4_0", "Q6_K", "Q2_K", "IQ4_NL", "F16"}) {
      for (bool leave_output : {false, true}) {
        Recipe recipe;
        recipe.gguf_type = type;
        recipe.leave_output_tensor = leave_output;
        const std::string two = (root_ / "two.gguf").string(), one = (root_ / "one.gguf").string();
        ASSERT_TRUE(RunGguf(recipe, f32, two, RunContext()).ok());
        for (const RunContext& ctx : {RunContext(), three}) {
          auto report = RunGguf(recipe, **src, one, ctx);
          ASSERT_TRUE(report.ok()) << report.status();
          EXPECT_EQ(ReadFile(one), ReadFile(two))
              << name << " " << type << " leave_output " << leave_output << " threads "
              << ctx.Parallelism();
          EXPECT_EQ(report->output_file_bytes, fs::file_size(one));
        }
      }
    }
  }
}

// The one-step path reports like every conversion: "load", then "convert"
// with tensors done / total after each tensor, then "done"; the report names
// the checkpoint's dtypes and bytes.
TEST_F(CheckpointTest, OneStepConversionReportsTensorProgress) {
  // A shared checkpoint (BF16, 2 shards): it has the tokenizer files Run reads.
  const std::string shared = std::string(QUANTD_TESTDATA) + "/hf/checkpoints/llama-tiny-shared";
  auto src = OpenSource(shared);
  ASSERT_TRUE(src.ok()) << src.status();
  const uint64_t tensors = (*src)->tensors().size();
  std::vector<Progress> seen;
  ThreadPool pool(1);
  RunContext ctx{
      .progress = [&](const Progress& p) { seen.push_back(p); }, .pool = &pool, .parallelism = 2};
  Recipe recipe;
  recipe.gguf_type = "Q4_K_M";
  const std::string out = (root_ / "q4.gguf").string();
  auto report = core::Run(recipe, shared, out, ctx);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_GE(seen.size(), tensors + 3);
  EXPECT_EQ(seen.front().phase, "load");
  EXPECT_EQ(seen.back().phase, "done");
  uint64_t done = 0;
  for (size_t i = 1; i + 1 < seen.size(); ++i) {
    EXPECT_EQ(seen[i].phase, "convert");
    EXPECT_EQ(seen[i].tensors_total, tensors);
    EXPECT_EQ(seen[i].tensors_done, done + (i == 1 ? 0 : 1)) << i;
    done = seen[i].tensors_done;
  }
  EXPECT_EQ(done, tensors);
  EXPECT_EQ(seen.back().bytes_done, fs::file_size(out));
  EXPECT_EQ(report->precision, "Q4_K_M");
  EXPECT_EQ(report->tensors_total, tensors);
  ASSERT_FALSE(report->tensors.empty());
  EXPECT_EQ(report->tensors.front().dtype_before, "BF16");
  EXPECT_THAT(report->notes,
              ::testing::Contains(::testing::HasSubstr("llama-quantize Q4_K_M, in one step")));

  // Cancelled between tensors: no output, not even a temp file.
  const fs::path out_dir = root_ / "cancelled";
  fs::create_directories(out_dir);
  CancelToken cancel;
  RunContext cancelling{.progress =
                            [&](const Progress& p) {
                              if (p.tensors_done == 3) cancel.Cancel();
                            },
                        .cancel = &cancel};
  EXPECT_THAT(core::Run(recipe, shared, (out_dir / "q4.gguf").string(), cancelling).status(),
              StatusIs(absl::StatusCode::kCancelled, "cancel"));
  EXPECT_TRUE(fs::is_empty(out_dir));
}

}  // namespace
}  // namespace quantd::core::checkpoint
