// general.* naming heuristics of llama.cpp's converter (gguf-py Metadata).
#include "quantd/core/checkpoint/model_name.h"

#include "gtest/gtest.h"

namespace quantd::core::checkpoint {
namespace {

TEST(ModelNameTest, IdToTitleKeepsVersionsAndMixedCase) {
  EXPECT_EQ(IdToTitle("phi3-tiny-shared"), "Phi3 Tiny Shared");
  EXPECT_EQ(IdToTitle("Phi-3.5-mini-instruct"), "Phi 3.5 Mini Instruct");
  EXPECT_EQ(IdToTitle("llama-2-7b-v1.5"), "Llama 2 7b v1.5");
  EXPECT_EQ(IdToTitle("qwen2x-abc"), "Qwen2X Abc");  // str.title() after a digit
}

TEST(ModelNameTest, SizeLabelRoundsToTwoSignificantDigits) {
  EXPECT_EQ(SizeLabel(4186448), "4.2M");
  EXPECT_EQ(SizeLabel(3821079552), "3.8B");
  EXPECT_EQ(SizeLabel(14659507200), "15B");
  EXPECT_EQ(SizeLabel(999), "1.0K");
}

TEST(ModelNameTest, FolderWithoutTaggedPartsGivesOnlyAName) {
  const GeneralNaming g = DeriveGeneralNaming(std::nullopt, "phi3-tiny-shared", 4186448);
  EXPECT_EQ(g.name, "Phi3 Tiny Shared");
  EXPECT_FALSE(g.basename);
  EXPECT_FALSE(g.finetune);
  EXPECT_EQ(g.size_label, "4.2M");
}

TEST(ModelNameTest, ContextLengthIsAFinetuneNotASize) {
  const ModelIdComponents c = ModelIdToComponents("Phi-3-mini-4k-instruct", 3821079552);
  EXPECT_EQ(c.basename, "Phi-3");
  EXPECT_EQ(c.size_label, "mini");
  EXPECT_EQ(c.finetune, "4k-instruct");
  EXPECT_FALSE(c.version);
}

TEST(ModelNameTest, NumericSizeLabelWinsAndOrganizationComesFromTheId) {
  const GeneralNaming g =
      DeriveGeneralNaming(std::string("meta-llama/Llama-2-7b-chat-hf"), "whatever", 6738415616);
  EXPECT_EQ(g.name, "Llama 2 7b Chat Hf");
  EXPECT_EQ(g.organization, "Meta Llama");
  EXPECT_EQ(g.basename, "Llama-2");
  EXPECT_EQ(g.size_label, "7B");
  EXPECT_EQ(g.finetune, "chat-hf");
}

}  // namespace
}  // namespace quantd::core::checkpoint
