#include "quantd/core/layer_index.h"

#include "gtest/gtest.h"
#include "quantd/core/recipe_flags.h"

namespace quantd::core {
namespace {

TEST(LayerIndexTest, ReadsTheExportersLayerNames) {
  EXPECT_EQ(LayerIndex("/model/layers.12/mlp/down_proj/MatMul"), 12);
  EXPECT_EQ(LayerIndex("model.layers.12.mlp.down_proj.MatMul.weight"), 12);
  EXPECT_EQ(LayerIndex("/layers.3/attention/wq/MatMul"), 3);
  EXPECT_EQ(LayerIndex("layers.0.attention.wq.weight"), 0);
  EXPECT_EQ(LayerIndex("transformer.h.7.mlp.c_fc.weight"), 7);
  EXPECT_EQ(LayerIndex("/h.7/attn/MatMul"), 7);
  EXPECT_EQ(LayerIndex("blocks.31.attn.qkv.weight"), 31);
  EXPECT_EQ(LayerIndex("/block.2/ffn/MatMul"), 2);
  EXPECT_EQ(LayerIndex("encoder.layer.5.output.dense.weight"), 5);
  EXPECT_EQ(LayerIndex("layers_4_mlp"), 4);
}

TEST(LayerIndexTest, IgnoresLookalikes) {
  EXPECT_EQ(LayerIndex("/lm_head/MatMul"), std::nullopt);
  EXPECT_EQ(LayerIndex("model.embed_tokens.weight"), std::nullopt);
  EXPECT_EQ(LayerIndex("mylayers.3.w"), std::nullopt);    // not a whole token
  EXPECT_EQ(LayerIndex("layers.3x.w"), std::nullopt);     // not a whole number
  EXPECT_EQ(LayerIndex("block_size.4"), std::nullopt);    // another word
  EXPECT_EQ(LayerIndex("graph.h.w"), std::nullopt);       // no number
  EXPECT_EQ(LayerIndex("layers."), std::nullopt);
  EXPECT_EQ(LayerIndex(""), std::nullopt);
}

TEST(Int8SelectionTest, FirstLastAndRegex) {
  Recipe r;
  r.precision = Precision::kInt4;
  r.int8_first_layers = 2;
  r.int8_last_layers = 1;
  r.int8_regex = {".*/mlp/down_proj/MatMul"};
  auto s = Int8Selection::Create(r, 6);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->empty());
  EXPECT_TRUE(s->Selects("a", 0));
  EXPECT_TRUE(s->Selects("a", 1));
  EXPECT_FALSE(s->Selects("a", 2));
  EXPECT_FALSE(s->Selects("a", 4));
  EXPECT_TRUE(s->Selects("a", 5));
  EXPECT_FALSE(s->Selects("a", std::nullopt));
  EXPECT_TRUE(s->Selects("/model/layers.3/mlp/down_proj/MatMul", 3));
  EXPECT_EQ(s->Reason("a", 5), "last 1 layers");
  EXPECT_TRUE(Int8Selection::Create(Recipe(), 6)->empty());
  r.int8_regex = {"(a"};
  EXPECT_FALSE(Int8Selection::Create(r, 6).ok());
}

TEST(Int8SelectionTest, FlagsRoundTripAndValidation) {
  Recipe r;
  std::vector<std::string> rest;
  ASSERT_TRUE(ParseRecipeFlags({"--precision", "int4", "--int8-layers", "first:2,last:3",
                                "--int8-nodes", ".*down_proj.*"},
                               &r, &rest)
                  .ok());
  EXPECT_EQ(r.int8_first_layers, 2);
  EXPECT_EQ(r.int8_last_layers, 3);
  EXPECT_EQ(r.int8_regex, std::vector<std::string>{".*down_proj.*"});
  EXPECT_TRUE(ValidateRecipe(r).ok());
  Recipe back;
  ASSERT_TRUE(ParseRecipeFlags(RecipeToFlags(r), &back, &rest).ok());
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(CanonicalRecipe(back), CanonicalRecipe(r));
  EXPECT_NE(CanonicalRecipe(r).find(";int8_layers=first:2,last:3"), std::string::npos);
  // Recipes without these fields keep their canonical text.
  EXPECT_EQ(CanonicalRecipe(Recipe()).find("int8_layers"), std::string::npos);
  EXPECT_EQ(CanonicalRecipe(Recipe()).find("int8_regex"), std::string::npos);
  Recipe bad;
  EXPECT_FALSE(ParseRecipeFlags({"--int8-layers", "middle:2"}, &bad, &rest).ok());
  EXPECT_FALSE(ParseRecipeFlags({"--int8-layers", "first:-1"}, &bad, &rest).ok());
  r.precision = Precision::kInt8;
  EXPECT_EQ(ValidateRecipe(r).code(), absl::StatusCode::kInvalidArgument);
  r.precision = Precision::kInt4;
  r.int8_regex = {"(unclosed"};
  EXPECT_EQ(ValidateRecipe(r).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quantd::core
