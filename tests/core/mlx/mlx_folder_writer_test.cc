#include "quantd/core/mlx/mlx_folder_writer.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/thread_pool.h"
#include "quantd/core/quant/mlx_affine.h"
#include "quantd/testing/status_matchers.h"
#include "quantd/testing/test_dir.h"
#include "safetensors_test_reader.h"

namespace quantd::core::mlx {
namespace {

namespace fs = std::filesystem;
using quant::MlxFloatType;
using ::quantd::testing::ReadTestSafetensors;
using ::quantd::testing::StatusIs;
using ::quantd::testing::TestSafetensors;
using ::quantd::testing::TestTensor;

// --- A synthetic Llama-shaped checkpoint held in memory. ---------------------

constexpr int kHidden = 64;
constexpr int kInter = 128;
constexpr int kVocab = 96;
constexpr int kLayers = 8;  // L/8 = 1: the mixed rule has every case

struct MemTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // the same values as float
};

class MemCheckpoint {
 public:
  explicit MemCheckpoint(const std::string& dtype) : dtype_(dtype) {
    Add("model.embed_tokens.weight", {kVocab, kHidden}, 0.5f);
    for (int i = 0; i < kLayers; ++i) {
      const std::string p = absl::StrCat("model.layers.", i, ".");
      Add(p + "input_layernorm.weight", {kHidden}, 1.0f);
      Add(p + "self_attn.q_proj.weight", {kHidden, kHidden}, 0.05f);
      Add(p + "self_attn.q_proj.bias", {kHidden}, 0.01f);
      Add(p + "self_attn.k_proj.weight", {kHidden / 2, kHidden}, 0.05f);
      Add(p + "self_attn.v_proj.weight", {kHidden / 2, kHidden}, 0.05f);
      Add(p + "self_attn.o_proj.weight", {kHidden, kHidden}, 0.05f);
      Add(p + "self_attn.rotary_emb.inv_freq", {kHidden / 8}, 1.0f);
      Add(p + "post_attention_layernorm.weight", {kHidden}, 1.0f);
      Add(p + "mlp.gate_proj.weight", {kInter, kHidden}, 0.05f);
      Add(p + "mlp.up_proj.weight", {kInter, kHidden}, 0.05f);
      Add(p + "mlp.down_proj.weight", {kHidden, kInter}, 0.05f);
    }
    Add("model.layers.0.mlp.odd_proj.weight", {8, 100}, 0.05f);  // 100 % 64 != 0
    Add("model.norm.weight", {kHidden}, 1.0f);
    Add("lm_head.weight", {kVocab, kHidden}, 0.05f);
  }

  // Each data() and release() call is counted in *calls when given.
  std::vector<MlxSourceTensor> Sources(std::map<std::string, int>* calls = nullptr) const {
    std::vector<MlxSourceTensor> out;
    for (const MemTensor& t : tensors_) {
      const MemTensor* p = &t;
      out.push_back({t.name, t.dtype, t.shape,
                     [p, calls]() -> absl::StatusOr<absl::Span<const uint8_t>> {
                       if (calls != nullptr) ++(*calls)["data " + p->name];
                       return absl::Span<const uint8_t>(p->bytes);
                     },
                     [p, calls]() {
                       if (calls != nullptr) ++(*calls)["release " + p->name];
                     }});
    }
    return out;
  }
  const MemTensor& Get(const std::string& name) const {
    for (const MemTensor& t : tensors_) {
      if (t.name == name) return t;
    }
    ADD_FAILURE() << "no tensor " << name;
    return tensors_.front();
  }
  std::vector<MemTensor>& tensors() { return tensors_; }

 private:
  void Add(const std::string& name, std::vector<int64_t> shape, float scale) {
    MemTensor t{name, dtype_, shape, {}, {}};
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::normal_distribution<float> normal(0.0f, scale);
    t.values.resize(n);
    const int es = dtype_ == "F32" ? 4 : 2;
    t.bytes.resize(n * es);
    for (int64_t i = 0; i < n; ++i) {
      float v = normal(rng_);
      if (dtype_ == "F32") {
        std::memcpy(&t.bytes[i * 4], &v, 4);
      } else {
        uint16_t h = dtype_ == "F16" ? FloatToHalf(v) : FloatToBfloat16(v);
        v = dtype_ == "F16" ? HalfToFloat(h) : Bfloat16ToFloat(h);
        std::memcpy(&t.bytes[i * 2], &h, 2);
      }
      t.values[i] = v;
    }
    tensors_.push_back(std::move(t));
  }

  std::string dtype_;
  std::mt19937 rng_{42};
  std::vector<MemTensor> tensors_;
};

std::string ConfigJson(const std::string& torch_dtype) {
  return absl::StrCat(R"({
  "_name_or_path": "someone/tiny-llama",
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "hidden_size": 64,
  "num_hidden_layers": 8,
  "rope_scaling": {"type": "linear", "factor": 2.0},
  "eos_token_id": 2,
  "rms_norm_eps": 1e-05,
  "tie_word_embeddings": false,
  "torch_dtype": ")",
                      torch_dtype, R"("
})");
}

const char kGenerationConfig[] = R"({"bos_token_id": 1, "eos_token_id": [2, 32000]})";

class MlxFolderWriterTest : public ::quantd::testing::TestDirTest {
 protected:
  void SetUp() override {
    TestDirTest::SetUp();
    // Side files of the checkpoint folder.
    ckpt_dir_ = dir_ / "ckpt";
    fs::create_directories(ckpt_dir_);
    std::ofstream(ckpt_dir_ / "tokenizer.json") << R"({"version": "1.0"})";
    std::ofstream(ckpt_dir_ / "tokenizer_config.json") << R"({"bos_token": "<s>"})";
    std::ofstream(ckpt_dir_ / "generation_config.json") << kGenerationConfig;
    std::ofstream(ckpt_dir_ / "config.json") << "{}";
    std::ofstream(ckpt_dir_ / "model.safetensors") << "not copied";
    std::ofstream(ckpt_dir_ / "README.md") << "not copied either";
  }

  absl::StatusOr<MlxFolderResult> Write(const MemCheckpoint& ck, const std::string& torch_dtype,
                                        const MlxFolderOptions& options,
                                        const std::string& out = "out") {
    out_ = (dir_ / out).string();
    return WriteMlxFolder(ck.Sources(), ConfigJson(torch_dtype), kGenerationConfig,
                          ListMlxSideFiles(ckpt_dir_.string()), out_, options);
  }

  // Every shard of the output, merged; checks per-file invariants.
  std::map<std::string, TestTensor> ReadWeights() {
    std::map<std::string, TestTensor> all;
    std::ifstream in(fs::path(out_) / "model.safetensors.index.json");
    nlohmann::json index = nlohmann::json::parse(in, nullptr, false);
    EXPECT_TRUE(index.is_object());
    std::set<std::string> files;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      files.insert(it->get<std::string>());
    }
    uint64_t total = 0;
    for (const std::string& f : files) {
      TestSafetensors st = ReadTestSafetensors((fs::path(out_) / f).string());
      EXPECT_TRUE(st.ok) << f << ": " << st.error;
      EXPECT_EQ(st.metadata, (std::map<std::string, std::string>{{"format", "mlx"}})) << f;
      for (auto& [name, t] : st.tensors) {
        EXPECT_EQ(index["weight_map"][name], f) << name;
        total += t.bytes.size();
        all[name] = std::move(t);
      }
    }
    EXPECT_EQ(all.size(), index["weight_map"].size());
    EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
    return all;
  }

  nlohmann::ordered_json ReadConfig() {
    std::ifstream in(fs::path(out_) / "config.json");
    return nlohmann::ordered_json::parse(in, nullptr, false);
  }

  fs::path ckpt_dir_;
  std::string out_;
};

MlxFloatType TypeOf(const std::string& d) {
  return d == "F32" ? MlxFloatType::kF32 : d == "F16" ? MlxFloatType::kF16 : MlxFloatType::kBF16;
}

double Sqnr(const std::vector<float>& ref, const std::vector<float>& got) {
  double s = 0, e = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    s += static_cast<double>(ref[i]) * ref[i];
    e += static_cast<double>(ref[i] - got[i]) * (ref[i] - got[i]);
  }
  return 10.0 * std::log10(s / e);
}

// Dequantizes "<m>.weight/scales/biases" of the output, checking their
// shapes and dtypes against the source tensor on the way.
std::vector<float> Dequantize(const std::map<std::string, TestTensor>& w, const MemTensor& src,
                              int bits, int group, const std::string& scale_dtype) {
  const std::string m = src.name.substr(0, src.name.size() - 7);
  const TestTensor& q = w.at(src.name);
  const TestTensor& s = w.at(m + ".scales");
  const TestTensor& b = w.at(m + ".biases");
  const int64_t rows = src.shape[0], cols = src.shape[1];
  EXPECT_EQ(q.dtype, "U32") << src.name;
  EXPECT_EQ(q.shape, (std::vector<int64_t>{rows, cols * bits / 32})) << src.name;
  EXPECT_EQ(s.dtype, scale_dtype) << src.name;
  EXPECT_EQ(b.dtype, scale_dtype) << src.name;
  EXPECT_EQ(s.shape, (std::vector<int64_t>{rows, cols / group})) << src.name;
  EXPECT_EQ(b.shape, s.shape) << src.name;
  std::vector<float> out(rows * cols);
  quant::DequantizeMlxAffine(TypeOf(scale_dtype), bits, group, q.bytes.data(), s.bytes.data(),
                             b.bytes.data(), rows, cols, out.data());
  return out;
}

TEST_F(MlxFolderWriterTest, FourBitFolderLayoutConfigAndSqnr) {
  MemCheckpoint ck("BF16");
  MlxFolderOptions opt;  // 4 bits, group 64
  auto r = Write(ck, "bfloat16", opt);
  ASSERT_TRUE(r.ok()) << r.status();

  // Files.
  EXPECT_TRUE(fs::exists(fs::path(out_) / "model.safetensors"));
  EXPECT_FALSE(fs::exists(fs::path(out_) / "model-00001-of-00001.safetensors"));
  for (const char* f : {"config.json", "model.safetensors.index.json", "tokenizer.json",
                        "tokenizer_config.json", "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(out_) / f)) << f;
  }
  EXPECT_FALSE(fs::exists(fs::path(out_) / "README.md"));
  std::ifstream tok(fs::path(out_) / "tokenizer.json");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(tok), {}), R"({"version": "1.0"})");

  // Tensors.
  std::map<std::string, TestTensor> w = ReadWeights();
  int quantized = 0;
  for (const MemTensor& t : ck.tensors()) {
    SCOPED_TRACE(t.name);
    if (t.name.find("rotary_emb.inv_freq") != std::string::npos) {
      EXPECT_EQ(w.count(t.name), 0u);
      continue;
    }
    const bool is_matrix = t.shape.size() == 2;
    const bool quantizable = is_matrix && t.shape[1] % 64 == 0;
    if (!quantizable) {
      const TestTensor& o = w.at(t.name);
      EXPECT_EQ(o.dtype, "BF16");
      EXPECT_EQ(o.shape, t.shape);
      EXPECT_EQ(o.bytes, t.bytes);
      continue;
    }
    ++quantized;
    std::vector<float> deq = Dequantize(w, t, 4, 64, "BF16");
    EXPECT_GT(Sqnr(t.values, deq), 18.0);
    // The bytes are the kernel's on the source rows (layout check).
    const int64_t rows = t.shape[0], cols = t.shape[1];
    std::vector<uint8_t> packed(rows * cols / 2), scales(rows * cols / 64 * 2),
        biases(scales.size());
    quant::QuantizeMlxAffine(MlxFloatType::kBF16, 4, 64, t.bytes.data(), rows, cols, cols,
                             packed.data(), scales.data(), biases.data());
    EXPECT_EQ(w.at(t.name).bytes, packed);
    const std::string m = t.name.substr(0, t.name.size() - 7);
    EXPECT_EQ(w.at(m + ".scales").bytes, scales);
    EXPECT_EQ(w.at(m + ".biases").bytes, biases);
  }
  EXPECT_EQ(quantized, 2 + kLayers * 7);
  EXPECT_EQ(r->tensors_quantized, static_cast<uint64_t>(quantized));

  // Report: SQNR for the quantized tensors.
  for (const TensorReport& t : r->tensors) {
    if (t.dtype_after == "MLX_AFFINE_4BIT_G64") {
      ASSERT_TRUE(t.sqnr_db.has_value()) << t.name;
      EXPECT_GT(*t.sqnr_db, 18.0) << t.name;
    } else {
      EXPECT_FALSE(t.sqnr_db.has_value()) << t.name;
    }
  }

  // config.json: sorted top-level keys, quantization objects, eos from
  // generation_config, _name_or_path dropped, nested order kept.
  nlohmann::ordered_json config = ReadConfig();
  ASSERT_TRUE(config.is_object());
  std::vector<std::string> keys;
  for (auto it = config.begin(); it != config.end(); ++it) keys.push_back(it.key());
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(config.count("_name_or_path"), 0u);
  EXPECT_EQ(config["quantization"].dump(), R"({"group_size":64,"bits":4,"mode":"affine"})");
  EXPECT_EQ(config["quantization_config"], config["quantization"]);
  EXPECT_EQ(config["eos_token_id"].dump(), "[2,32000]");
  EXPECT_EQ(config["rope_scaling"].dump(), R"({"type":"linear","factor":2.0})");
  // Python's json.dump(indent=4) shape.
  std::ifstream cin(fs::path(out_) / "config.json");
  std::string text(std::istreambuf_iterator<char>(cin), {});
  EXPECT_THAT(text, ::testing::HasSubstr("\n    \"rms_norm_eps\": 1e-05,\n"));
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "\n    \"architectures\": [\n        \"LlamaForCausalLM\"\n    ],"));

  // Index: parameters counted as in the float model.
  std::ifstream iin(fs::path(out_) / "model.safetensors.index.json");
  nlohmann::ordered_json index = nlohmann::ordered_json::parse(iin, nullptr, false);
  uint64_t params = 0;
  for (const MemTensor& t : ck.tensors()) {
    if (t.name.find("inv_freq") == std::string::npos) params += t.values.size();
  }
  EXPECT_EQ(index["metadata"]["total_parameters"].get<uint64_t>(), params);
  std::vector<std::string> names;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    names.push_back(it.key());
  }
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

// mixed_3_6 on 8 layers: "more bits" layers are 0, 3, 6 and 7
// (i < 1, i >= 7, (i - 1) % 3 == 2).
TEST_F(MlxFolderWriterTest, MixedRecipeFollowsMlxLmRule) {
  MemCheckpoint ck("F32");
  MlxFolderOptions opt;
  opt.quant.recipe = MlxMixedRecipe::kMixed3_6;
  auto r = Write(ck, "float32", opt);
  ASSERT_TRUE(r.ok()) << r.status();
  std::map<std::string, TestTensor> w = ReadWeights();
  nlohmann::ordered_json q = ReadConfig()["quantization"];
  EXPECT_EQ(q["bits"], 4);
  EXPECT_EQ(q["group_size"], 64);
  const std::set<int> more = {0, 3, 6, 7};
  int entries = 0;
  for (const MemTensor& t : ck.tensors()) {
    if (t.shape.size() != 2 || t.shape[1] % 64 != 0) continue;
    SCOPED_TRACE(t.name);
    const std::string m = t.name.substr(0, t.name.size() - 7);
    int layer = -1;
    if (m.rfind("model.layers.", 0) == 0) layer = std::stoi(m.substr(13));
    const bool high =
        m == "lm_head" ||
        ((m.find("v_proj") != std::string::npos || m.find("down_proj") != std::string::npos) &&
         more.count(layer) > 0);
    const int bits = high ? 6 : 3;
    ASSERT_TRUE(q.contains(m));
    EXPECT_EQ(q[m].dump(),
              absl::StrCat(R"({"group_size":64,"bits":)", bits, R"(,"mode":"affine"})"));
    ++entries;
    std::vector<float> deq = Dequantize(w, t, bits, 64, "F32");
    EXPECT_GT(Sqnr(t.values, deq), bits == 6 ? 28.0 : 10.0);
  }
  EXPECT_EQ(q.size(), 3u + entries);
  EXPECT_EQ(ReadConfig()["quantization_config"], q);
}

TEST_F(MlxFolderWriterTest, KeepEmbeddingsAndExcludesStayFloat) {
  MemCheckpoint ck("F16");
  MlxFolderOptions opt;
  opt.quant.bits = 8;
  opt.quant.group_size = 32;
  opt.quant.keep_embeddings = true;
  opt.quant.exclude_regex = {R"(model\.layers\.1\..*)"};
  opt.quant.exclude_names = {"model.layers.2.mlp.up_proj"};
  auto r = Write(ck, "float16", opt);
  ASSERT_TRUE(r.ok()) << r.status();
  std::map<std::string, TestTensor> w = ReadWeights();
  for (const std::string name :
       {"model.embed_tokens.weight", "model.layers.1.self_attn.q_proj.weight",
        "model.layers.1.mlp.down_proj.weight", "model.layers.2.mlp.up_proj.weight"}) {
    EXPECT_EQ(w.at(name).dtype, "F16") << name;
    EXPECT_EQ(w.at(name).bytes, ck.Get(name).bytes) << name;
    EXPECT_EQ(w.count(name.substr(0, name.size() - 7) + ".scales"), 0u) << name;
  }
  EXPECT_EQ(w.at("lm_head.weight").dtype, "U32");
  EXPECT_EQ(w.at("model.layers.2.mlp.down_proj.scales").shape,
            (std::vector<int64_t>{kHidden, kInter / 32}));
  // The odd-sized layer is not a multiple of 32 either.
  EXPECT_EQ(w.at("model.layers.0.mlp.odd_proj.weight").dtype, "F16");
}

// F32 weights with torch_dtype bfloat16: cast first (as mlx_lm.convert), so
// scales, biases and norms are BF16 and the codes are those of the cast values.
TEST_F(MlxFolderWriterTest, CastsToTorchDtypeBeforeQuantizing) {
  MemCheckpoint ck("F32");
  auto r = Write(ck, "bfloat16", MlxFolderOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  std::map<std::string, TestTensor> w = ReadWeights();
  const MemTensor& norm = ck.Get("model.norm.weight");
  const TestTensor& out_norm = w.at("model.norm.weight");
  EXPECT_EQ(out_norm.dtype, "BF16");
  ASSERT_EQ(out_norm.bytes.size(), norm.values.size() * 2);
  for (size_t i = 0; i < norm.values.size(); ++i) {
    uint16_t b;
    std::memcpy(&b, &out_norm.bytes[2 * i], 2);
    EXPECT_EQ(b, FloatToBfloat16(norm.values[i]));
  }
  const MemTensor& q = ck.Get("model.layers.5.self_attn.q_proj.weight");
  std::vector<uint16_t> cast(q.values.size());
  for (size_t i = 0; i < cast.size(); ++i) cast[i] = FloatToBfloat16(q.values[i]);
  std::vector<uint8_t> packed(kHidden * kHidden / 2), scales(kHidden * 2), biases(kHidden * 2);
  quant::QuantizeMlxAffine(MlxFloatType::kBF16, 4, 64, cast.data(), kHidden, kHidden, kHidden,
                           packed.data(), scales.data(), biases.data());
  EXPECT_EQ(w.at(q.name).bytes, packed);
  EXPECT_EQ(w.at("model.layers.5.self_attn.q_proj.scales").bytes, scales);
  EXPECT_EQ(w.at("model.layers.5.self_attn.q_proj.scales").dtype, "BF16");
}

// Small shard limit: mlx-lm's greedy split and file names.
TEST_F(MlxFolderWriterTest, ShardsAtTheLimit) {
  MemCheckpoint ck("BF16");
  MlxFolderOptions opt;
  opt.max_shard_bytes = 20000;
  auto r = Write(ck, "bfloat16", opt);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> shards;
  for (const auto& e : fs::directory_iterator(out_)) {
    const std::string n = e.path().filename().string();
    if (n.find(".safetensors") != std::string::npos && n.find("index") == std::string::npos) {
      shards.push_back(n);
      EXPECT_LE(ReadTestSafetensors(e.path().string()).file_size - 8 -
                    ReadTestSafetensors(e.path().string()).header_len,
                opt.max_shard_bytes)
          << n;
    }
  }
  std::sort(shards.begin(), shards.end());
  ASSERT_GT(shards.size(), 2u);
  for (size_t i = 0; i < shards.size(); ++i) {
    char want[64];
    std::snprintf(want, sizeof(want), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    EXPECT_EQ(shards[i], want);
  }
  EXPECT_FALSE(fs::exists(fs::path(out_) / "model.safetensors"));
  std::map<std::string, TestTensor> w = ReadWeights();  // the index covers every shard
  const MemTensor& t = ck.Get("lm_head.weight");
  EXPECT_GT(Sqnr(t.values, Dequantize(w, t, 4, 64, "BF16")), 18.0);
}

TEST_F(MlxFolderWriterTest, Refusals) {
  MemCheckpoint ck("BF16");
  fs::create_directories(dir_ / "full");
  std::ofstream(dir_ / "full" / "x") << "x";
  EXPECT_THAT(Write(ck, "bfloat16", MlxFolderOptions(), "full").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "not empty"));

  MlxFolderOptions bad;
  bad.quant.bits = 7;
  EXPECT_THAT(Write(ck, "bfloat16", bad, "b1").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "MLX bits 7"));
  bad = MlxFolderOptions();
  bad.quant.exclude_regex = {"("};
  EXPECT_THAT(Write(ck, "bfloat16", bad, "b2").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a valid RE2 regular expression"));

  ck.tensors()[3].bytes.pop_back();
  EXPECT_THAT(Write(ck, "bfloat16", MlxFolderOptions(), "b3").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "shape and dtype need"));

  EXPECT_THAT(
      WriteMlxFolder({}, "[1]", "", {}, (dir_ / "b4").string(), MlxFolderOptions()).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, "config.json is not a JSON object"));
}

// NaN or infinity in a weight that is quantized: refused with the tensor and
// element named; the shard being written is not left behind.
TEST_F(MlxFolderWriterTest, NonFiniteWeightIsRefusedWithoutOutput) {
  for (uint16_t bits : {uint16_t{0x7fc0}, uint16_t{0xff80}}) {  // BF16 NaN, -Inf
    MemCheckpoint ck("BF16");
    MemTensor& q = ck.tensors().back();
    ASSERT_EQ(q.name, "lm_head.weight");
    std::memcpy(q.bytes.data() + 2 * 77, &bits, 2);
    const std::string name = bits == 0x7fc0 ? "nan" : "inf";
    EXPECT_THAT(Write(ck, "bfloat16", MlxFolderOptions(), name).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("tensor 'lm_head.weight' element 77 is ",
                                      bits == 0x7fc0 ? "NaN" : "-Inf")));
    EXPECT_TRUE(fs::is_empty(dir_ / name)) << name;
  }
}

TEST_F(MlxFolderWriterTest, ReportsProgressAndStopsWhenCancelled) {
  MemCheckpoint ck("BF16");
  std::vector<Progress> seen;
  ProgressFn progress = [&](const Progress& p) { seen.push_back(p); };
  out_ = (dir_ / "p").string();
  MlxFolderOptions small_shards;
  small_shards.max_shard_bytes = 20000;  // a module's outputs may straddle two files
  std::map<std::string, int> calls;
  RunContext ctx;
  ctx.progress = progress;
  auto r =
      WriteMlxFolder(ck.Sources(&calls), ConfigJson("bfloat16"), "", {}, out_, small_shards, ctx);
  ASSERT_TRUE(r.ok()) << r.status();
  // Every written tensor's data is asked for once and released once.
  for (const MemTensor& t : ck.tensors()) {
    const int want = t.name.find("inv_freq") == std::string::npos ? 1 : 0;
    EXPECT_EQ(calls["data " + t.name], want) << t.name;
    EXPECT_EQ(calls["release " + t.name], want) << t.name;
  }
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().tensors_done, seen.back().tensors_total);
  EXPECT_EQ(seen.back().bytes_done, r->total_size);
  EXPECT_EQ(seen.back().bytes_total, r->total_size);

  CancelToken cancel;
  int progress_calls = 0;
  ProgressFn cancel_later = [&](const Progress&) {
    if (++progress_calls == 5) cancel.Cancel();
  };
  RunContext cancel_ctx;
  cancel_ctx.progress = cancel_later;
  cancel_ctx.cancel = &cancel;
  EXPECT_THAT(WriteMlxFolder(ck.Sources(), ConfigJson("bfloat16"), "", {}, (dir_ / "c").string(),
                             MlxFolderOptions(), cancel_ctx)
                  .status(),
              StatusIs(absl::StatusCode::kCancelled, "cancelled"));
  // The shard being written is not left behind (nor its temp file).
  EXPECT_FALSE(fs::exists(dir_ / "c" / "model.safetensors"));
  EXPECT_TRUE(fs::is_empty(dir_ / "c"));
}

// rows x cols BF16 values N(0, 0.05), seeded.
std::vector<uint8_t> RandomBf16Rows(int64_t rows, int64_t cols, uint32_t seed) {
  std::vector<uint8_t> big(rows * cols * 2);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (int64_t i = 0; i < rows * cols; ++i) {
    const uint16_t h = FloatToBfloat16(normal(rng));
    std::memcpy(&big[2 * i], &h, 2);
  }
  return big;
}

// A quantized source "model.layers.0.mlp.big_proj.weight" reading `big`.
MlxSourceTensor BigProj(const std::vector<uint8_t>& big, int64_t rows, int64_t cols) {
  return {"model.layers.0.mlp.big_proj.weight",
          "BF16",
          {rows, cols},
          [&big]() -> absl::StatusOr<absl::Span<const uint8_t>> {
            return absl::Span<const uint8_t>(big);
          },
          nullptr};
}

// Rows are quantized in parallel blocks: with a pool, every file and every
// number of the report are those of the single-threaded run.
TEST_F(MlxFolderWriterTest, ThreadsChangeNeitherFilesNorReport) {
  MemCheckpoint ck("BF16");
  // Rows enough for several blocks of rows (a block is about 2^20 elements).
  const std::vector<uint8_t> big = RandomBf16Rows(70000, 64, 7);
  std::vector<MlxSourceTensor> sources = ck.Sources();
  sources.push_back(BigProj(big, 70000, 64));
  MlxFolderOptions opt;
  opt.max_shard_bytes = 1 << 20;  // several shards
  auto one = WriteMlxFolder(sources, ConfigJson("float16"), "", {}, (dir_ / "one").string(), opt);
  ASSERT_TRUE(one.ok()) << one.status();
  ThreadPool pool(3);
  RunContext ctx;
  ctx.pool = &pool;
  ctx.parallelism = 4;
  auto four =
      WriteMlxFolder(sources, ConfigJson("float16"), "", {}, (dir_ / "four").string(), opt, ctx);
  ASSERT_TRUE(four.ok()) << four.status();
  ASSERT_GT(one->files.size(), 2u);
  EXPECT_EQ(four->files, one->files);
  for (const std::string& f : one->files) {
    std::ifstream a(dir_ / "one" / f, std::ios::binary), b(dir_ / "four" / f, std::ios::binary);
    const std::string sa(std::istreambuf_iterator<char>(a), {});
    const std::string sb(std::istreambuf_iterator<char>(b), {});
    EXPECT_TRUE(sa == sb) << f;
  }
  ASSERT_EQ(four->tensors.size(), one->tensors.size());
  bool saw_big = false;
  for (size_t i = 0; i < one->tensors.size(); ++i) {
    const TensorReport& x = one->tensors[i];
    const TensorReport& y = four->tensors[i];
    EXPECT_EQ(x.sqnr_db, y.sqnr_db) << x.name;
    EXPECT_EQ(x.rel_l2_error, y.rel_l2_error) << x.name;
    EXPECT_EQ(x.max_abs_error, y.max_abs_error) << x.name;
    EXPECT_EQ(x.rel_output_error, y.rel_output_error) << x.name;
    if (x.name == "model.layers.0.mlp.big_proj.weight") {
      saw_big = true;
      ASSERT_TRUE(x.sqnr_db.has_value());
      EXPECT_GT(*x.sqnr_db, 15.0);
    }
  }
  EXPECT_TRUE(saw_big);
}

// The report levels: none measures nothing; the sampled output error (the
// default) of a large matrix is within 1 % of the one over every row, and the other figures
// are the same (they cover every weight at both levels); the files do not
// change.
TEST_F(MlxFolderWriterTest, ReportLevelsSampleTheOutputErrorOnly) {
  MemCheckpoint ck("BF16");
  const int64_t rows = 32000;  // a vocabulary-sized matrix: a 20 % sample
  const std::vector<uint8_t> big = RandomBf16Rows(rows, 256, 11);
  std::vector<MlxSourceTensor> sources = ck.Sources();
  sources.push_back(BigProj(big, rows, 256));
  auto run = [&](const std::string& dir, bool measure, quant::QualityLevel level) {
    MlxFolderOptions opt;
    opt.compute_quality = measure;
    opt.quality_level = level;
    auto r = WriteMlxFolder(sources, ConfigJson("float16"), "", {}, (dir_ / dir).string(), opt);
    EXPECT_TRUE(r.ok()) << r.status();
    return *std::move(r);
  };
  const MlxFolderResult full = run("full", true, quant::QualityLevel::kFull);
  const MlxFolderResult sampled = run("sampled", true, quant::QualityLevel::kSampled);
  const MlxFolderResult none = run("none", false, quant::QualityLevel::kSampled);
  ASSERT_EQ(full.files, none.files);
  for (const std::string& f : full.files) {
    std::ifstream a(dir_ / "full" / f, std::ios::binary), b(dir_ / "none" / f, std::ios::binary);
    EXPECT_TRUE(std::string(std::istreambuf_iterator<char>(a), {}) ==
                std::string(std::istreambuf_iterator<char>(b), {}))
        << f;
  }
  bool saw_big = false;
  for (size_t i = 0; i < full.tensors.size(); ++i) {
    const TensorReport& f = full.tensors[i];
    const TensorReport& s = sampled.tensors[i];
    EXPECT_FALSE(none.tensors[i].sqnr_db.has_value()) << f.name;
    EXPECT_FALSE(none.tensors[i].rel_output_error.has_value()) << f.name;
    if (!f.rel_output_error.has_value()) continue;
    EXPECT_EQ(s.sqnr_db, f.sqnr_db) << f.name;
    EXPECT_EQ(s.max_abs_error, f.max_abs_error) << f.name;
    ASSERT_TRUE(s.rel_output_error.has_value()) << f.name;
    if (f.name == "model.layers.0.mlp.big_proj.weight") {
      // The sample's 1 % bound holds for matrices of this size (the small
      // ones of MemCheckpoint, a few 64-row groups, vary more).
      saw_big = true;
      EXPECT_NEAR(*s.rel_output_error, *f.rel_output_error, 0.01 * *f.rel_output_error);
      EXPECT_NE(*s.rel_output_error, *f.rel_output_error);  // a sample, not every row
    }
  }
  EXPECT_TRUE(saw_big);
}

TEST(MlxQuantPlanTest, MixedRecipeNeedsDownProj) {
  MlxQuantOptions opt;
  opt.recipe = MlxMixedRecipe::kMixed4_6;
  EXPECT_THAT(PlanMlxQuantization({{"a.weight", "F32", {4, 64}}}, 1, opt).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "needs down_proj"));
  EXPECT_THAT(ParseMlxMixedRecipe("mixed_5_6").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown MLX mixed recipe"));
  EXPECT_EQ(*ParseMlxMixedRecipe("mixed_2_6"), MlxMixedRecipe::kMixed2_6);
}

// Phi-3's fused qkv_proj contains "v_proj": mlx-lm's substring rule gives it
// the high bits on "more bits" layers.
TEST(MlxQuantPlanTest, FusedQkvCountsAsVProj) {
  MlxQuantOptions opt;
  opt.recipe = MlxMixedRecipe::kMixed2_6;
  std::vector<MlxTensorInfo> t = {
      {"model.layers.0.self_attn.qkv_proj.weight", "BF16", {192, 64}},
      {"model.layers.1.self_attn.qkv_proj.weight", "BF16", {192, 64}},
      {"model.layers.0.mlp.down_proj.weight", "BF16", {64, 128}},
      {"model.layers.1.mlp.gate_up_proj.weight", "BF16", {256, 64}},
      {"model.layers.1.mlp.down_proj.weight", "BF16", {64, 128}},
  };
  // L = 2: L/8 = 0, 7L/8 = 1, so only layer 1 "uses more bits".
  auto plan = PlanMlxQuantization(t, 2, opt);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->tensors[0].bits, 2);
  EXPECT_EQ(plan->tensors[1].bits, 6);
  EXPECT_EQ(plan->tensors[2].bits, 2);
  EXPECT_EQ(plan->tensors[3].bits, 2);
  EXPECT_EQ(plan->tensors[4].bits, 6);
  EXPECT_EQ(plan->tensors[3].module, "model.layers.1.mlp.gate_up_proj");
}

TEST(MlxCastDtypeTest, FromConfig) {
  EXPECT_EQ(MlxCastDtype(nlohmann::ordered_json::parse(R"({"torch_dtype":"bfloat16"})")), "BF16");
  EXPECT_EQ(MlxCastDtype(nlohmann::ordered_json::parse(R"({"text_config":{"dtype":"float16"}})")),
            "F16");
  EXPECT_EQ(MlxCastDtype(nlohmann::ordered_json::parse(R"({"dtype":"float16"})")), "");
}

}  // namespace
}  // namespace quantd::core::mlx
