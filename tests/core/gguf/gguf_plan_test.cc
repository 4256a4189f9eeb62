// Per-tensor control of GGUF runs: --tensor-type overrides, --prune-layers,
// --dry-run and the plan in the report.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/gguf/gguf_file.h"
#include "quantd/core/gguf/gguf_run.h"
#include "quantd/core/gguf/gguf_split_source.h"

namespace quantd::core {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class GgufPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("gguf_plan_test_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  static Recipe Q(const std::string& type) {
    Recipe r;
    r.format = ModelFormat::kGguf;
    r.gguf_type = type;
    return r;
  }
  static std::string Read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  static gguf::GgufFile Parse(const std::string& bytes) {
    auto f = gguf::GgufFile::Parse({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
    EXPECT_TRUE(f.ok()) << f.status();
    return *f;
  }
  const std::string model_ = std::string(QUANTD_TESTDATA) + "/gguf/tiny-llama-f32.gguf";
  fs::path dir_;
};

const PlanEntry* Find(const Report& r, const std::string& name) {
  for (const PlanEntry& e : r.plan) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

TEST_F(GgufPlanTest, DryRunPredictsTheOutputAndWritesNothing) {
  Recipe r = Q("Q4_K_M");
  r.tensor_types = {"attn_k=q8_0"};
  r.prune_layers = {3};
  r.dry_run = true;
  auto dry = RunGguf(r, model_, Path("out.gguf"), RunContext());
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_TRUE(dry->dry_run);
  EXPECT_TRUE(fs::is_empty(dir_));
  r.dry_run = false;
  auto real = RunGguf(r, model_, Path("out.gguf"), RunContext());
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_EQ(dry->output_file_bytes, fs::file_size(Path("out.gguf")));
  EXPECT_EQ(dry->output_file_bytes, real->output_file_bytes);
  ASSERT_EQ(dry->plan.size(), real->plan.size());
  const gguf::GgufFile out = Parse(Read(Path("out.gguf")));
  ASSERT_EQ(out.tensors().size(), dry->plan.size());
  for (size_t i = 0; i < dry->plan.size(); ++i) {
    EXPECT_EQ(dry->plan[i].name, out.tensors()[i].name);
    EXPECT_EQ(dry->plan[i].type_after, gguf::TypeName(out.tensors()[i].type));
    EXPECT_EQ(dry->plan[i].bytes_after, out.tensors()[i].nbytes);
  }
  EXPECT_THAT(real->ToJson(), HasSubstr("\"plan\""));
}

// The first pattern that changes a tensor's type wins; a pattern asking for
// the type the tensor would get anyway is passed over (llama-quantize).
TEST_F(GgufPlanTest, TensorTypeFirstChangingMatchWins) {
  Recipe r = Q("Q4_K_M");
  r.tensor_types = {"attn_q=Q4_K", "ATTN_Q=q8_0", "attn=q5_0", "blk\\.7\\.ffn_up=f16"};
  r.dry_run = true;
  auto rep = RunGguf(r, model_, Path("out.gguf"), RunContext());
  ASSERT_TRUE(rep.ok()) << rep.status();
  const PlanEntry* q = Find(*rep, "blk.0.attn_q.weight");
  const PlanEntry* k = Find(*rep, "blk.0.attn_k.weight");
  const PlanEntry* up7 = Find(*rep, "blk.7.ffn_up.weight");
  const PlanEntry* up6 = Find(*rep, "blk.6.ffn_up.weight");
  ASSERT_TRUE(q && k && up7 && up6);
  EXPECT_EQ(q->type_after, "Q8_0");  // pattern 1 (lower-cased), not 0 (same as the default)
  EXPECT_EQ(q->rule, "tensor_type[1]");
  EXPECT_EQ(k->type_after, "Q5_0");
  EXPECT_EQ(up7->type_after, "F16");
  EXPECT_EQ(up6->type_after, "Q4_K");
  EXPECT_EQ(up6->rule, "mix");
  // ffn_down has rows of 384: a K-quant asked for it falls back as the mix's own would.
  r.tensor_types = {"ffn_down=q6_k"};
  rep = RunGguf(r, model_, Path("out.gguf"), RunContext());
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(Find(*rep, "blk.0.ffn_down.weight")->type_after, "Q8_0");
  EXPECT_EQ(Find(*rep, "blk.0.ffn_down.weight")->rule, "tensor_type[0] fallback");
}

TEST_F(GgufPlanTest, BadTensorTypesAndPruneListsAreRefused) {
  for (const char* bad : {"attn_q", "=q8_0", "attn_q=", "attn_q=q9_9", "(=q8_0"}) {
    Recipe r = Q("Q4_K_M");
    r.tensor_types = {bad};
    auto st = RunGguf(r, model_, Path("out.gguf"), RunContext()).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(st.message()), HasSubstr("tensor_types")) << bad;
  }
  Recipe r = Q("Q4_K_M");
  r.prune_layers = {8};
  EXPECT_THAT(std::string(RunGguf(r, model_, Path("out.gguf"), RunContext()).status().message()),
              HasSubstr("block 8 does not exist"));
  r.prune_layers = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_THAT(std::string(RunGguf(r, model_, Path("out.gguf"), RunContext()).status().message()),
              HasSubstr("every block"));
  EXPECT_TRUE(fs::is_empty(dir_));
}

// Pruned blocks are gone, later ones renumbered with their data, and the
// block count follows.
TEST_F(GgufPlanTest, PruneLayersRenumbersTheRest) {
  Recipe r = Q("F32");
  r.prune_layers = {5, 2, 2};
  ASSERT_TRUE(RunGguf(r, model_, Path("out.gguf"), RunContext()).ok());
  const std::string in_bytes = Read(model_), out_bytes = Read(Path("out.gguf"));
  const gguf::GgufFile in = Parse(in_bytes), out = Parse(out_bytes);
  EXPECT_EQ(out.FindKv("llama.block_count")->AsInt(), 6);
  EXPECT_EQ(out.FindTensor("blk.6.attn_q.weight"), nullptr);
  // out blk.k = in blk.(k, k+1, k+2) for k < 2, 2 <= k < 4, k >= 4.
  for (int k = 0; k < 6; ++k) {
    const int src = k < 2 ? k : (k < 4 ? k + 1 : k + 2);
    const auto* o = out.FindTensor(absl::StrCat("blk.", k, ".attn_q.weight"));
    const auto* i = in.FindTensor(absl::StrCat("blk.", src, ".attn_q.weight"));
    ASSERT_TRUE(o && i) << k;
    ASSERT_EQ(o->nbytes, i->nbytes);
    EXPECT_EQ(std::memcmp(out_bytes.data() + out.data_offset() + o->offset,
                          in_bytes.data() + in.data_offset() + i->offset, o->nbytes),
              0)
        << k;
  }
  EXPECT_EQ(out.tensors().size(), in.tensors().size() - 2 * 9);  // 9 tensors per block
}

TEST(GgufSplitNamesTest, LlamaCppSplitFileNames) {
  EXPECT_EQ(gguf::SplitPath("d/model", 0, 3), "d/model-00001-of-00003.gguf");
  EXPECT_EQ(gguf::SplitPrefix("d/model-00002-of-00003.gguf"), "d/model");
  EXPECT_EQ(gguf::SplitPrefix("model.gguf"), "");
  EXPECT_EQ(gguf::SplitPrefix("model-0002-of-00003.gguf"), "");
}

// split_max_bytes: parts hold at most that much tensor data; together they
// hold every tensor once, with the metadata in the first part only; the
// parts read back as one model give the single-file bytes.
TEST_F(GgufPlanTest, SplitOutputReadsBackAsTheWhole) {
  Recipe r = Q("Q8_0");
  r.split_max_bytes = 1500000;
  auto rep = RunGguf(r, model_, Path("s.gguf"), RunContext());
  ASSERT_TRUE(rep.ok()) << rep.status();
  ASSERT_GE(rep->output_files.size(), 3u);
  size_t tensors = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < rep->output_files.size(); ++i) {
    const std::string b = Read(rep->output_files[i]);
    bytes += b.size();
    const gguf::GgufFile f = Parse(b);
    uint64_t data = 0;
    for (const auto& t : f.tensors()) data += gguf::AlignUp(t.nbytes, 32);
    EXPECT_LE(data, r.split_max_bytes);
    EXPECT_EQ(f.FindKv("split.no")->AsInt(), static_cast<int64_t>(i));
    EXPECT_EQ(f.FindKv("split.count")->AsInt(), static_cast<int64_t>(rep->output_files.size()));
    EXPECT_EQ(f.FindKv("general.architecture") != nullptr, i == 0);
    tensors += f.tensors().size();
  }
  EXPECT_EQ(bytes, rep->output_file_bytes);
  auto whole = RunGguf(Q("Q8_0"), model_, Path("w.gguf"), RunContext());
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(tensors, whole->tensors_total);
  // Requantizing Q8_0 -> Q8_0 copies: the parts as input give the whole file back.
  Recipe again = Q("Q8_0");
  ASSERT_TRUE(RunGguf(again, rep->output_files[1], Path("again.gguf"), RunContext()).ok());
  EXPECT_EQ(Read(Path("again.gguf")), Read(Path("w.gguf")));
}

}  // namespace
}  // namespace quantd::core
