// Tests of quantd.v1.Recipe <-> core::Recipe (proto/recipe_proto.cc): a
// recipe parsed from quantctl's flags, sent as a proto and read back as the
// server does, must keep its canonical form, so the two directions cannot
// drift.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quantd/api/recipe_proto.h"
#include "quantd/core/recipe.h"
#include "quantd/core/recipe_flags.h"

namespace quantd::api {
namespace {

core::Recipe Parse(const std::vector<std::string>& flags) {
  core::Recipe r;
  std::vector<std::string> rest;
  EXPECT_TRUE(core::ParseRecipeFlags(flags, &r, &rest).ok());
  EXPECT_TRUE(rest.empty());
  return r;
}

// core -> proto (quantctl) -> core (server) must give the same canonical recipe.
void ExpectRoundTrip(const std::vector<std::string>& flags) {
  core::Recipe before = Parse(flags);
  auto after = RecipeFromProto(RecipeToProto(before));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(core::CanonicalRecipe(*after), core::CanonicalRecipe(before))
      << ::testing::PrintToString(flags);
}

TEST(RecipeProtoTest, EveryPresetRoundTripsThroughTheServer) {
  for (const auto& p : core::Presets()) ExpectRoundTrip({"--preset", p.name});
}

TEST(RecipeProtoTest, ExplicitFlagsRoundTripThroughTheServer) {
  ExpectRoundTrip({"--precision",
                   "int4",
                   "--block-size",
                   "64",
                   "--asymmetric",
                   "--accuracy-level",
                   "4",
                   "--int4-format",
                   "qdq",
                   "--algorithm",
                   "search",
                   "--lm-head",
                   "int8",
                   "--exclude-nodes",
                   ".*attn.*",
                   "--exclude-node",
                   "a,b",
                   "--op-types",
                   "MatMul,Gather",
                   "--quantize-embeddings",
                   "--min-tensor-elements",
                   "4096",
                   "--threads",
                   "3"});
  ExpectRoundTrip({"--precision", "int8", "--int8-mode", "dynamic", "--int8-weight-type", "quint8",
                   "--per-channel", "--reduce-range"});
  ExpectRoundTrip({"--precision", "fp16", "--no-keep-io-types",
                   "--op-block-list=", "--node-block-list", "n1,n2", "--external-data", "always"});
  ExpectRoundTrip({"--precision", "fp16", "--op-block-list", "Resize,TopK"});
  ExpectRoundTrip({"--format", "gguf", "--gguf-type", "Q4_K_M", "--leave-output-tensor",
                   "--output-tensor-type", "q8_0", "--token-embedding-type", "q8_0", "--pure",
                   "--allow-requantize"});
  ExpectRoundTrip({"--preset", "mobile-int4", "--block-size", "128"});
  ExpectRoundTrip({"--gguf-type", "Q8_0", "--model-name", "phi3-tiny-shared"});
  ExpectRoundTrip({"--precision", "int4", "--report-level", "none"});
  ExpectRoundTrip({"--precision", "int4", "--report-level", "full"});
  EXPECT_EQ(RecipeToProto(Parse({"--precision", "int4"})).report_level(), v1::REPORT_LEVEL_SUMMARY);
  EXPECT_EQ(RecipeToProto(Parse({"--gguf-type", "F16", "--model-name", "m-1"})).model_name(),
            "m-1");
}

TEST(RecipeProtoTest, MlxFlagsRoundTripThroughTheServer) {
  ExpectRoundTrip({"--format", "mlx"});
  ExpectRoundTrip({"--format", "mlx", "--bits", "3", "--group-size", "128", "--mlx-recipe",
                   "mixed_3_6", "--keep-embeddings", "--exclude-nodes", "lm_head"});
  ExpectRoundTrip({"--format", "mlx", "--precision", "int8", "--group-size", "32"});
  v1::Recipe p = RecipeToProto(
      Parse({"--format", "mlx", "--bits", "6", "--mlx-recipe", "mixed_4_6", "--group-size", "32"}));
  EXPECT_EQ(p.format(), v1::MODEL_FORMAT_MLX);
  EXPECT_EQ(p.bits(), 6);
  EXPECT_EQ(p.group_size(), 32);
  EXPECT_EQ(p.mlx_recipe(), "mixed_4_6");
  auto back = RecipeFromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->format, core::ModelFormat::kMlx);
  EXPECT_EQ(back->bits, 6);
  EXPECT_EQ(back->group_size, 32);
  EXPECT_EQ(back->mlx_recipe, "mixed_4_6");
}

TEST(RecipeProtoTest, KeepEmbeddingsTravelsOnlyWhenSet) {
  // Unset, the format decides on the server: ONNX keeps, MLX quantizes.
  v1::Recipe mlx = RecipeToProto(Parse({"--format", "mlx"}));
  EXPECT_FALSE(mlx.has_keep_embeddings());
  auto back = RecipeFromProto(mlx);
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(core::KeepEmbeddings(*back));
  EXPECT_FALSE(RecipeToProto(Parse({"--precision", "int4"})).has_keep_embeddings());
  auto onnx = RecipeFromProto(RecipeToProto(Parse({"--precision", "int4"})));
  ASSERT_TRUE(onnx.ok());
  EXPECT_TRUE(core::KeepEmbeddings(*onnx));
  v1::Recipe kept = RecipeToProto(Parse({"--format", "mlx", "--keep-embeddings"}));
  ASSERT_TRUE(kept.has_keep_embeddings());
  EXPECT_TRUE(kept.keep_embeddings());
  EXPECT_TRUE(core::KeepEmbeddings(*RecipeFromProto(kept)));
}

TEST(RecipeProtoTest, OtherFormatsCarryNoMlxFields) {
  v1::Recipe p = RecipeToProto(Parse({"--precision", "int4", "--block-size", "64"}));
  EXPECT_FALSE(p.has_bits());
  EXPECT_FALSE(p.has_group_size());
  EXPECT_TRUE(p.mlx_recipe().empty());
}

// Every enum field refuses a value it does not know, format included (it
// used to fall back to auto-detection).
TEST(RecipeProtoTest, UnknownEnumValuesAreRefused) {
  v1::Recipe p;
  p.set_precision(v1::PRECISION_INT4);
  p.set_format(static_cast<v1::ModelFormat>(99));
  auto r = RecipeFromProto(p);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("recipe.format: unknown value 99"), std::string::npos);
  p.set_format(v1::MODEL_FORMAT_ONNX);
  EXPECT_TRUE(RecipeFromProto(p).ok());
  p.set_precision(static_cast<v1::Precision>(42));
  EXPECT_EQ(RecipeFromProto(p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RecipeProtoTest, EmptyOpBlockListStaysPresent) {
  v1::Recipe p = RecipeToProto(Parse({"--precision", "fp16", "--op-block-list="}));
  EXPECT_TRUE(p.has_op_block_list());
  EXPECT_EQ(p.op_block_list().values_size(), 0);
  EXPECT_FALSE(RecipeToProto(Parse({"--precision", "fp16"})).has_op_block_list());
}

}  // namespace
}  // namespace quantd::api
