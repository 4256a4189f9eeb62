// core::Run with a recipe of format mlx: a checkpoint folder (the shared tiny
// Llama, BF16 in two shards) to an MLX folder through the checkpoint reader;
// the report; bytes that do not depend on the threads; all-or-nothing output
// on cancellation and refusals.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/thread_pool.h"
#include "quantd/core/run.h"
#include "quantd/testing/status_matchers.h"
#include "quantd/testing/test_dir.h"

namespace quantd::core {
namespace {

namespace fs = std::filesystem;
using ::quantd::testing::StatusIs;

const fs::path kLlama = fs::path(QUANTD_TESTDATA) / "hf" / "checkpoints" / "llama-tiny-shared";

std::map<std::string, std::string> ReadFolder(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    files[e.path().filename().string()] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  return files;
}

// Folders beside `out` whose names start with out's name ("out.partial-...").
std::vector<std::string> Leftovers(const fs::path& out) {
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(out.parent_path())) {
    const std::string name = e.path().filename().string();
    if (absl::StartsWith(name, out.filename().string())) left.push_back(name);
  }
  return left;
}

class MlxRunTest : public ::quantd::testing::TestDirTest {
 protected:
  void SetUp() override {
    TestDirTest::SetUp();
    recipe_.format = ModelFormat::kMlx;
  }

  Recipe recipe_;
};

TEST_F(MlxRunTest, WritesTheFolderAndReportsEveryTensor) {
  ASSERT_TRUE(fs::exists(kLlama / "config.json"));
  const fs::path out = dir_ / "out";
  auto report = core::Run(recipe_, kLlama.string(), out.string() + "/");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, "mlx");
  EXPECT_EQ(report->precision, "4bit");
  EXPECT_THAT(report->recipe, ::testing::HasSubstr("format=mlx"));
  EXPECT_THAT(report->recipe, ::testing::HasSubstr("keep_embeddings=0"));
  EXPECT_GT(report->tensors_converted, 0u);
  EXPECT_GT(report->input_file_bytes, 0u);
  std::map<std::string, std::string> files = ReadFolder(out);
  for (const char* f : {"model.safetensors", "model.safetensors.index.json", "config.json",
                        "tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    EXPECT_TRUE(files.count(f)) << f;
  }
  ASSERT_EQ(report->output_files.size(), files.size());
  uint64_t bytes = 0;
  for (const auto& [name, data] : files) bytes += data.size();
  EXPECT_EQ(report->output_file_bytes, bytes);
  EXPECT_THAT(files["config.json"], ::testing::HasSubstr("\"bits\": 4"));
  EXPECT_THAT(files["config.json"], ::testing::HasSubstr("\"group_size\": 64"));
  // Embeddings are quantized by default (as mlx-lm); every quantized tensor
  // has its quality.
  bool embedding = false;
  for (const TensorReport& t : report->tensors) {
    if (t.dtype_after.rfind("MLX_AFFINE_4BIT_G64", 0) != 0) continue;
    ASSERT_TRUE(t.sqnr_db.has_value()) << t.name;
    EXPECT_GT(*t.sqnr_db, 15.0) << t.name;
    embedding = embedding || absl::StrContains(t.name, "embed_tokens");
  }
  EXPECT_TRUE(embedding);
  EXPECT_THAT(Leftovers(out), ::testing::ElementsAre("out"));
}

TEST_F(MlxRunTest, ThreadsDoNotChangeTheBytes) {
  recipe_.mlx_recipe = "mixed_3_6";
  recipe_.keep_embeddings = true;
  recipe_.group_size = 32;
  auto one = core::Run(recipe_, kLlama.string(), (dir_ / "one").string());
  ASSERT_TRUE(one.ok()) << one.status();
  ThreadPool pool(2);
  RunContext ctx;
  ctx.pool = &pool;
  ctx.parallelism = 3;
  auto three = core::Run(recipe_, kLlama.string(), (dir_ / "three").string(), ctx);
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_EQ(one->precision, "mixed_3_6");
  EXPECT_TRUE(ReadFolder(dir_ / "one") == ReadFolder(dir_ / "three"));
  for (const TensorReport& t : one->tensors) {
    EXPECT_FALSE(absl::StrContains(t.name, "embed_tokens") &&
                 t.dtype_after.rfind("MLX_AFFINE", 0) == 0)
        << "kept float: " << t.name;
  }
}

TEST_F(MlxRunTest, CancelledRunLeavesNothing) {
  const fs::path out = dir_ / "out";
  CancelToken cancel;
  RunContext ctx;
  ctx.cancel = &cancel;
  int quantize_reports = 0;
  ctx.progress = [&](const Progress& p) {
    // Well into the weights: some shards' files have been written.
    if (p.phase == "quantize" && ++quantize_reports == 6) cancel.Cancel();
  };
  EXPECT_THAT(core::Run(recipe_, kLlama.string(), out.string(), ctx).status(),
              StatusIs(absl::StatusCode::kCancelled, "cancelled"));
  EXPECT_GE(quantize_reports, 6);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_THAT(Leftovers(out), ::testing::IsEmpty());
}

TEST_F(MlxRunTest, RefusesAFolderInTheWayAndNonCheckpointInputs) {
  const fs::path out = dir_ / "out";
  fs::create_directories(out);
  std::ofstream(out / "keep.txt") << "mine";
  EXPECT_THAT(core::Run(recipe_, kLlama.string(), out.string()).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "not an empty folder"));
  EXPECT_TRUE(fs::exists(out / "keep.txt"));
  // An empty folder is taken.
  const fs::path empty = dir_ / "empty";
  fs::create_directories(empty);
  EXPECT_TRUE(core::Run(recipe_, kLlama.string(), empty.string()).ok());
  EXPECT_TRUE(fs::exists(empty / "model.safetensors"));

  const fs::path file = dir_ / "model.onnx";
  std::ofstream(file) << "not a checkpoint";
  EXPECT_THAT(core::Run(recipe_, file.string(), (dir_ / "x").string()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "format mlx converts a Hugging Face checkpoint folder"));
  Recipe bad = recipe_;
  bad.bits = 7;
  EXPECT_THAT(core::Run(bad, kLlama.string(), (dir_ / "y").string()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "bits 7"));
  EXPECT_FALSE(fs::exists(dir_ / "y"));
}

}  // namespace
}  // namespace quantd::core
