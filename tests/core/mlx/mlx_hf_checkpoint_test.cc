// The shared tiny Hugging Face checkpoints (Phi-3 F32 in one file, Llama BF16
// in two shards) to MLX folders at 4 bits / group 64 and at mixed_3_6, read
// back twice: here (per-tensor SQNR of the report) and by an independent
// numpy checker (mlx_folder_check.py: layout, config.json and index bytes as
// mlx-lm writes them, unpacking, SQNR, side files).
//
// The checkpoint is read with the test-only safetensors parser; the library's
// checkpoint reader plugs into WriteMlxFolder the same way.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "quantd/core/mlx/mlx_folder_writer.h"
#include "safetensors_test_reader.h"

namespace quantd::core::mlx {
namespace {

namespace fs = std::filesystem;
using ::quantd::testing::ReadTestSafetensors;
using ::quantd::testing::TestSafetensors;

std::string ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

using Param = std::tuple<std::string, std::string>;  // checkpoint, recipe

class MlxHfCheckpointTest : public ::testing::TestWithParam<Param> {};

TEST_P(MlxHfCheckpointTest, ConvertsAndReadsBack) {
  const auto& [name, recipe] = GetParam();
  const fs::path ckpt = fs::path(QUANTD_TESTDATA) / "hf" / "checkpoints" / name;
  ASSERT_TRUE(fs::exists(ckpt / "config.json")) << ckpt;

  // Shards in file-name order, tensors by name within a shard.
  std::vector<fs::path> shard_paths;
  for (const auto& e : fs::directory_iterator(ckpt)) {
    if (e.path().extension() == ".safetensors") shard_paths.push_back(e.path());
  }
  std::sort(shard_paths.begin(), shard_paths.end());
  std::vector<TestSafetensors> shards;
  for (const fs::path& p : shard_paths) {
    shards.push_back(ReadTestSafetensors(p.string()));
    ASSERT_TRUE(shards.back().ok) << p << ": " << shards.back().error;
  }
  std::vector<MlxSourceTensor> sources;
  for (const TestSafetensors& st : shards) {
    for (const auto& [tname, t] : st.tensors) {
      const auto* bytes = &t.bytes;
      sources.push_back({tname, t.dtype, t.shape,
                         [bytes]() -> absl::StatusOr<absl::Span<const uint8_t>> {
                           return absl::Span<const uint8_t>(*bytes);
                         },
                         nullptr});
    }
  }

  const fs::path out = fs::path(::testing::TempDir()) / absl::StrCat("mlx_hf_", name, "_", recipe);
  fs::remove_all(out);
  MlxFolderOptions opt;
  auto r = ParseMlxMixedRecipe(recipe);
  ASSERT_TRUE(r.ok());
  opt.quant.recipe = *r;
  const std::string gen =
      fs::exists(ckpt / "generation_config.json") ? ReadText(ckpt / "generation_config.json") : "";
  auto result = WriteMlxFolder(sources, ReadText(ckpt / "config.json"), gen,
                               ListMlxSideFiles(ckpt.string()), out.string(), opt);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->tensors_quantized, 0u);
  for (const TensorReport& t : result->tensors) {
    if (!t.sqnr_db.has_value()) continue;
    // 3-bit layers of mixed_3_6 are the weakest: about 14 dB on Gaussian weights.
    EXPECT_GT(*t.sqnr_db, recipe == "none" ? 18.0 : 12.0) << t.name << " " << t.dtype_after;
  }

  // Debian's python3 has numpy (ctest sets QUANTD_PYTHON to it).
  const char* python = std::getenv("QUANTD_PYTHON");
  if (python == nullptr) python = "/usr/bin/python3";
  const std::string source_dir = QUANTD_MLX_TEST_SOURCE_DIR;
  const std::string cmd = absl::StrCat(
      python, " ", source_dir, "/tests/core/mlx/mlx_folder_check.py ", ckpt.string(), " ",
      out.string(), " 4 64 ", recipe, " ", (fs::path(QUANTD_TESTDATA) / "hf" / "ref").string(),
      " > ", out.string(), ".check.log 2>&1");
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << ReadText(out.string() + ".check.log");
  fs::remove_all(out);
  fs::remove(out.string() + ".check.log");
}

INSTANTIATE_TEST_SUITE_P(
    SharedCheckpoints, MlxHfCheckpointTest,
    ::testing::Combine(::testing::Values("phi3-tiny-shared", "llama-tiny-shared"),
                       ::testing::Values("none", "mixed_3_6")),
    [](const ::testing::TestParamInfo<Param>& info) {
      std::string n = std::get<0>(info.param) + "_" + std::get<1>(info.param);
      std::string out;
      bool up = true;
      for (char c : n) {
        if (c == '-' || c == '_') {
          up = true;
          continue;
        }
        out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
        up = false;
      }
      return out;
    });

}  // namespace
}  // namespace quantd::core::mlx
