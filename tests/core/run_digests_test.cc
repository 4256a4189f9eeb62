// core::Run with RunContext::output_digests: every output file of every
// writer (GGUF requantized and converted from a checkpoint, ONNX Runtime
// GenAI and MLX folders with their JSON and copied tokenizer files, ONNX
// with external data) is hashed while it is written, and the digest
// recorded for it is that of the file on disk. Whatever a writer does not
// hash in order would be found missing here.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "quantd/core/base/output_digests.h"
#include "quantd/core/base/sha256.h"
#include "quantd/core/base/thread_pool.h"
#include "quantd/core/recipe.h"
#include "quantd/core/run.h"
#include "quantd/core/run_context.h"
#include "quantd/testing/test_dir.h"

namespace quantd::core {
namespace {

namespace fs = std::filesystem;

const fs::path kTestdata(QUANTD_TESTDATA);
const fs::path kLlamaCheckpoint = kTestdata / "hf" / "checkpoints" / "llama-tiny-shared";
const fs::path kGgufF32 = kTestdata / "gguf" / "tiny-llama-f32.gguf";

class RunDigestsTest : public ::quantd::testing::TestDirTest {
 protected:
  // Runs `recipe` with digests asked for (on two threads: GGUF chunks are
  // then written by whichever loop thread holds the writer's role) and
  // checks every output file's digest against the file. Returns the files.
  std::vector<std::string> RunAndCheck(const Recipe& recipe, const fs::path& in,
                                       const fs::path& out) {
    ThreadPool pool(1);
    OutputDigests digests;
    RunContext ctx;
    ctx.pool = &pool;
    ctx.parallelism = 2;
    ctx.output_digests = &digests;
    auto report = core::Run(recipe, in.string(), out.string(), ctx);
    EXPECT_TRUE(report.ok()) << report.status();
    if (!report.ok()) return {};
    EXPECT_FALSE(report->output_files.empty());
    for (const std::string& file : report->output_files) {
      SCOPED_TRACE(file);
      const auto digest = digests.Find(fs::path(file).filename().string());
      EXPECT_TRUE(digest.has_value()) << "not hashed while written";
      if (!digest.has_value()) continue;
      EXPECT_EQ(digest->size, fs::file_size(file));
      auto on_disk = Sha256File(file);
      EXPECT_TRUE(on_disk.ok()) << on_disk.status();
      if (on_disk.ok()) {
        EXPECT_EQ(digest->sha256, *on_disk);
      }
    }
    return report->output_files;
  }
};

TEST_F(RunDigestsTest, GgufOutputsAreHashedWhileWritten) {
  Recipe requantize;
  requantize.gguf_type = "Q4_K_M";
  EXPECT_EQ(RunAndCheck(requantize, kGgufF32, dir_ / "q4.gguf").size(), 1u);
  Recipe convert;  // the checkpoint converter's writer
  convert.gguf_type = "F16";
  EXPECT_EQ(RunAndCheck(convert, kLlamaCheckpoint, dir_ / "f16.gguf").size(), 1u);
}

TEST_F(RunDigestsTest, FolderAndOnnxOutputsAreHashedWhileWritten) {
  Recipe genai;
  genai.format = ModelFormat::kOnnx;
  genai.precision = Precision::kFp32;
  const std::vector<std::string> genai_files = RunAndCheck(genai, kLlamaCheckpoint, dir_ / "genai");
  EXPECT_GE(genai_files.size(), 4u);  // model, data, genai_config.json, tokenizer files
  Recipe mlx;
  mlx.format = ModelFormat::kMlx;
  EXPECT_GE(RunAndCheck(mlx, kLlamaCheckpoint, dir_ / "mlx").size(), 4u);
  // ONNX (external data) to INT4: computed tensors and passed-through ones.
  Recipe int4;
  int4.precision = Precision::kInt4;
  int4.block_size = 32;
  const fs::path out = dir_ / "int4";
  fs::create_directories(out);
  EXPECT_EQ(RunAndCheck(int4, dir_ / "genai" / "model.onnx", out / "model.onnx").size(), 2u);
}

}  // namespace
}  // namespace quantd::core
