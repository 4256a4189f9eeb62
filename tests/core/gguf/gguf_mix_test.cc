// llama-quantize's per-tensor type choice.
#include "quantd/core/gguf/gguf_mix.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace quantd::core::gguf {
namespace {

GgufTensorInfo T(const std::string& name, std::vector<int64_t> ne, GgmlType type = GgmlType::kF32) {
  GgufTensorInfo t;
  t.name = name;
  t.ne = std::move(ne);
  t.type = type;
  return t;
}

ModelFacts Llama(int n_layer) {
  ModelFacts m;
  m.arch = "llama";
  m.n_layer = n_layer;
  m.n_head = 4;
  m.n_head_kv = 2;
  m.has_output = true;
  m.n_attention_wv = n_layer;
  return m;
}

TEST(GgufMixTest, ParsesFileTypeNames) {
  EXPECT_EQ(*ParseFileType("Q4_K_M"), FileType::kQ4_K_M);
  EXPECT_EQ(*ParseFileType("q8_0"), FileType::kQ8_0);
  EXPECT_EQ(*ParseFileType("Q4_K"), FileType::kQ4_K_M);  // llama-quantize alias
  EXPECT_EQ(*ParseFileType("f32"), FileType::kAllF32);
  auto bad = ParseFileType("Q7_K");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("Q4_K_M"));
  EXPECT_EQ(DefaultType(FileType::kQ3_K_L), GgmlType::kQ3_K);
}

TEST(GgufMixTest, OrdersLikeLlamaCpp) {
  std::vector<GgufTensorInfo> ts = {
      T("blk.10.attn_q.weight", {32, 32}), T("token_embd.weight", {32, 32}),
      T("blk.2.ffn_up.weight", {32, 32}), T("blk.2.attn_k.weight", {32, 32}),
      T("output.weight", {32, 32})};
  std::vector<std::string> names;
  for (size_t i : ProcessingOrder(ts)) names.push_back(ts[i].name);
  EXPECT_THAT(names,
              ::testing::ElementsAre("output.weight", "token_embd.weight", "blk.2.attn_k.weight",
                                     "blk.2.ffn_up.weight", "blk.10.attn_q.weight"));
}

TEST(GgufMixTest, QuantizesOnlyWeightMatrices) {
  MixOptions o;
  EXPECT_TRUE(TensorAllowsQuantization(T("blk.0.attn_q.weight", {256, 256}), o));
  EXPECT_FALSE(TensorAllowsQuantization(T("blk.0.attn_norm.weight", {256, 256}), o));
  EXPECT_FALSE(TensorAllowsQuantization(T("blk.0.attn_q.bias", {256, 256}), o));
  EXPECT_FALSE(TensorAllowsQuantization(T("blk.0.attn_q.weight", {256}), o));
  EXPECT_FALSE(
      TensorAllowsQuantization(T("blk.0.attn_q.weight", {256, 1}), o));  // ggml_n_dims == 1
  EXPECT_FALSE(TensorAllowsQuantization(T("blk.0.ffn_gate_inp.weight", {256, 8}), o));
  o.quantize_output_tensor = false;
  EXPECT_FALSE(TensorAllowsQuantization(T("output.weight", {256, 320}), o));
}

TEST(GgufMixTest, Q4KMGivesMoreBitsToSomeLayers) {
  MixOptions o;
  o.ftype = FileType::kQ4_K_M;
  MixPlanner p(Llama(8), o);
  std::vector<GgmlType> v, down;
  for (int i = 0; i < 8; ++i) {
    v.push_back(*p.Choose(T("blk." + std::to_string(i) + ".attn_v.weight", {256, 128})));
    down.push_back(*p.Choose(T("blk." + std::to_string(i) + ".ffn_down.weight", {512, 256})));
  }
  // use_more_bits(i, 8): layers 0, 3, 6, 7.
  const std::vector<GgmlType> want = {GgmlType::kQ6_K, GgmlType::kQ4_K, GgmlType::kQ4_K,
                                      GgmlType::kQ6_K, GgmlType::kQ4_K, GgmlType::kQ4_K,
                                      GgmlType::kQ6_K, GgmlType::kQ6_K};
  EXPECT_EQ(v, want);
  EXPECT_EQ(down, want);
  EXPECT_EQ(*p.Choose(T("output.weight", {256, 320})), GgmlType::kQ6_K);
  EXPECT_EQ(*p.Choose(T("token_embd.weight", {256, 320})), GgmlType::kQ4_K);
  EXPECT_EQ(*p.Choose(T("blk.0.attn_norm.weight", {256})), GgmlType::kF32);
}

TEST(GgufMixTest, FallsBackWhenRowsAreNotMultiplesOf256) {
  MixOptions o;
  o.ftype = FileType::kQ4_K_M;
  MixPlanner p(Llama(8), o);
  // ffn_down counts layers in call order: #0 gets Q6_K (-> Q8_0), #1 Q4_K (-> Q5_0).
  EXPECT_EQ(*p.Choose(T("blk.0.ffn_down.weight", {384, 256})), GgmlType::kQ8_0);
  EXPECT_EQ(*p.Choose(T("blk.1.ffn_down.weight", {384, 256})), GgmlType::kQ5_0);
  EXPECT_EQ(*p.Choose(T("blk.1.ffn_gate.weight", {384, 256})), GgmlType::kQ5_0);
  EXPECT_EQ(*p.Choose(T("output.weight", {384, 320})), GgmlType::kQ8_0);
  EXPECT_EQ(*p.Choose(T("blk.1.attn_q.weight", {48, 48})), GgmlType::kF16);  // not even 32
  EXPECT_GT(p.fallbacks(), 0);
  MixOptions q2;
  q2.ftype = FileType::kQ2_K;
  MixPlanner p2(Llama(8), q2);
  EXPECT_EQ(*p2.Choose(T("blk.0.ffn_down.weight", {384, 256})),
            GgmlType::kIQ4_NL);  // Q3_K -> IQ4_NL
}

TEST(GgufMixTest, UserTypesAndPure) {
  MixOptions o;
  o.ftype = FileType::kQ4_K_M;
  o.output_tensor_type = GgmlType::kQ8_0;
  o.token_embedding_type = GgmlType::kF16;
  o.pure = true;
  MixPlanner p(Llama(8), o);
  EXPECT_EQ(*p.Choose(T("output.weight", {256, 320})), GgmlType::kQ8_0);
  EXPECT_EQ(*p.Choose(T("token_embd.weight", {256, 320})), GgmlType::kF16);
  EXPECT_EQ(*p.Choose(T("blk.0.attn_v.weight", {256, 128})), GgmlType::kQ4_K);  // pure: no mix
  MixOptions bad;
  bad.output_tensor_type = GgmlType::kQ4_K;
  MixPlanner pb(Llama(8), bad);
  EXPECT_FALSE(pb.Choose(T("output.weight", {384, 320})).ok());
}

TEST(GgufMixTest, TiedEmbeddingsUseTheOutputRule) {
  ModelFacts m = Llama(8);
  m.has_output = false;
  MixOptions o;
  o.ftype = FileType::kQ4_0;
  MixPlanner p(m, o);
  EXPECT_EQ(*p.Choose(T("token_embd.weight", {256, 320})), GgmlType::kQ6_K);
}

}  // namespace
}  // namespace quantd::core::gguf
