#include "quantd/core/recipe.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/recipe_flags.h"

namespace quantd::core {
namespace {

TEST(RecipeFlagsTest, ParsesFlagsAndLeavesTheRest) {
  Recipe r;
  std::vector<std::string> rest;
  ASSERT_TRUE(ParseRecipeFlags({"in.onnx", "--precision", "fp16", "-o", "out.onnx",
                                "--no-keep-io-types", "--op-block-list=Resize,TopK"},
                               &r, &rest)
                  .ok());
  EXPECT_EQ(r.precision, Precision::kFp16);
  EXPECT_FALSE(r.keep_io_types);
  ASSERT_TRUE(r.op_block_list.has_value());
  EXPECT_EQ(*r.op_block_list, (std::vector<std::string>{"Resize", "TopK"}));
  EXPECT_EQ(rest, (std::vector<std::string>{"in.onnx", "-o", "out.onnx"}));
}

TEST(RecipeFlagsTest, PresetAppliesFirstAndFlagsOverride) {
  Recipe r;
  std::vector<std::string> rest;
  ASSERT_TRUE(ParseRecipeFlags({"--block-size", "64", "--preset", "mobile-int4"}, &r, &rest).ok());
  EXPECT_EQ(r.precision, Precision::kInt4);
  EXPECT_EQ(r.block_size, 64);
  EXPECT_EQ(r.lm_head, LmHeadMode::kInt8);
  EXPECT_EQ(r.preset, "mobile-int4");
}

TEST(RecipeFlagsTest, RefusesBadValuesClearly) {
  Recipe r;
  std::vector<std::string> rest;
  auto st = ParseRecipeFlags({"--precision", "int3"}, &r, &rest);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("use fp32, fp16, int8 or int4"));
  EXPECT_EQ(ParseRecipeFlags({"--block-size"}, &r, &rest).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRecipeFlags({"--preset", "nope"}, &r, &rest).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RecipeTest, ValidateRefusesAbsurdValues) {
  Recipe r;
  EXPECT_EQ(ValidateRecipe(r).code(), absl::StatusCode::kInvalidArgument);  // no target
  r.precision = Precision::kInt4;
  EXPECT_TRUE(ValidateRecipe(r).ok());
  r.block_size = 48;
  EXPECT_THAT(std::string(ValidateRecipe(r).message()), ::testing::HasSubstr("block size 48"));
  r.block_size = 32;
  r.accuracy_level = 9;
  EXPECT_EQ(ValidateRecipe(r).code(), absl::StatusCode::kInvalidArgument);
  r.accuracy_level = 0;
  r.precision = Precision::kInt8;
  r.algorithm = QuantAlgorithm::kSearch;
  EXPECT_THAT(std::string(ValidateRecipe(r).message()), ::testing::HasSubstr("int4 only"));
  r.precision = Precision::kInt4;
  r.threads = 100000;
  EXPECT_EQ(ValidateRecipe(r).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RecipeTest, FlagsRoundTripAndCanonicalFormIsStable) {
  Recipe r;
  std::vector<std::string> rest;
  ASSERT_TRUE(ParseRecipeFlags({"--precision", "int4", "--asymmetric", "--block-size", "128",
                                "--exclude-nodes", "lm_head.*", "--lm-head", "int8", "--threads", "2"},
                               &r, &rest)
                  .ok());
  Recipe back;
  ASSERT_TRUE(ParseRecipeFlags(RecipeToFlags(r), &back, &rest).ok());
  EXPECT_EQ(CanonicalRecipe(back), CanonicalRecipe(r));
  Recipe other = r;
  other.threads = 1;  // threads do not change the bytes: same identity
  EXPECT_EQ(CanonicalRecipe(other), CanonicalRecipe(r));
  other.block_size = 64;
  EXPECT_NE(CanonicalRecipe(other), CanonicalRecipe(r));
}

}  // namespace
}  // namespace quantd::core
