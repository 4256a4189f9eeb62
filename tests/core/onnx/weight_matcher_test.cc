#include "core/onnx/weight_matcher.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/onnx/onnx_types.h"
#include "test_models.h"

namespace quantd::core {
namespace {

using ::quantd::testing::AddNode;
using ::quantd::testing::FloatTensor;
using ::quantd::testing::RandomFloats;
using ::quantd::testing::Value;
using ::testing::HasSubstr;

TEST(NodeExclusionTest, ExactNamesAndWholeNameRegexes) {
  Recipe r;
  r.exclude_nodes = {"/model/layers.0/MatMul"};
  r.exclude_regex = {"lm_head", ".*/mlp/.*"};
  auto ex = NodeExclusion::Create(r);
  ASSERT_TRUE(ex.ok()) << ex.status();
  auto excludes = [&](const std::string& name) { return ex->Excludes(name); };
  EXPECT_TRUE(excludes("/model/layers.0/MatMul"));
  EXPECT_FALSE(excludes("/model/layers.0/MatMul_1"));  // names are exact
  EXPECT_TRUE(excludes("lm_head"));
  EXPECT_FALSE(excludes("/lm_head/MatMul"));  // regexes match the whole name
  EXPECT_TRUE(excludes("/model/layers.1/mlp/up_proj/MatMul"));
  EXPECT_FALSE(excludes(""));

  NodeExclusion none;
  EXPECT_FALSE(none.Excludes("lm_head"));
}

// Patterns that overflow a backtracking engine's stack or run for ever on
// long node names: RE2 matches them in linear time.
TEST(NodeExclusionTest, HostilePatternsMatchInLinearTime) {
  Recipe r;
  r.exclude_regex = {"(a|b)*", "(a*)*b"};
  auto ex = NodeExclusion::Create(r);
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_TRUE(ex->Excludes(std::string(200000, 'a')));
  EXPECT_FALSE(ex->Excludes(std::string(200000, 'a') + "c"));
  EXPECT_FALSE(ex->Excludes(std::string(29, 'a') + "c"));
  EXPECT_TRUE(ex->Excludes(std::string(30, 'a') + "b"));
}

TEST(NodeExclusionTest, BadRegexNamesTheRecipeField) {
  Recipe r;
  r.exclude_regex = {"fine", "(unclosed"};
  auto ex = NodeExclusion::Create(r);
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ex.status().message()), HasSubstr("exclude_regex '(unclosed'"));
  EXPECT_THAT(std::string(ex.status().message()), ::testing::Not(HasSubstr("--")));
}

// W (initializer), C (Constant), T = Transpose(W), TT = Transpose(T), and
// X, an initializer that is also a graph input.
onnx::GraphProto Weights() {
  onnx::GraphProto g;
  *g.add_input() = Value("x", kOnnxFloat, {1, 4});
  *g.add_input() = Value("X", kOnnxFloat, {4, 3});
  *g.add_initializer() = FloatTensor("W", {4, 3}, RandomFloats(12, 1));
  *g.add_initializer() = FloatTensor("X", {4, 3}, RandomFloats(12, 2));
  auto* c = AddNode(&g, "Constant", "c", {}, {"C"});
  auto* a = c->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = FloatTensor("", {4, 3}, RandomFloats(12, 3));
  AddNode(&g, "Transpose", "t", {"W"}, {"T"});
  AddNode(&g, "Transpose", "tt", {"T"}, {"TT"});
  return g;
}

TEST(WeightMatcherTest, ResolvesInitializersConstantsAndOneTranspose) {
  onnx::GraphProto g = Weights();
  ConstWeight w;
  ASSERT_TRUE(ResolveWeight(&g, "W", &w));
  EXPECT_EQ(w.tensor, g.mutable_initializer(0));
  EXPECT_EQ(w.constant, nullptr);
  EXPECT_EQ(w.transpose, nullptr);

  ConstWeight c;
  ASSERT_TRUE(ResolveWeight(&g, "C", &c));
  EXPECT_EQ(c.constant, g.mutable_node(0));
  EXPECT_EQ(c.value, "C");

  ConstWeight t;
  ASSERT_TRUE(ResolveWeight(&g, "T", &t));
  EXPECT_EQ(t.tensor, g.mutable_initializer(0));
  EXPECT_EQ(t.transpose, g.mutable_node(1));
  EXPECT_EQ(t.value, "T");

  ConstWeight none;
  EXPECT_FALSE(ResolveWeight(&g, "TT", &none));  // only one Transpose folds
  EXPECT_FALSE(ResolveWeight(&g, "X", &none));   // a caller may override it
  EXPECT_FALSE(ResolveWeight(&g, "x", &none));   // an activation
}

TEST(WeightMatcherTest, EmbeddingSkipReasons) {
  onnx::GraphProto g = Weights();
  auto* gather = AddNode(&g, "Gather", "emb", {"W", "x"}, {"e"});
  ConstWeight w;
  ASSERT_TRUE(ResolveWeight(&g, "W", &w));
  EXPECT_EQ(EmbeddingSkipReason(*gather, w, 0), "");
  EXPECT_THAT(EmbeddingSkipReason(*gather, w, 13), HasSubstr("fewer than"));
  EXPECT_TRUE(HasEmbedding(&g, 0));
  EXPECT_FALSE(HasEmbedding(&g, 13));

  auto* axis = gather->add_attribute();
  axis->set_name("axis");
  axis->set_type(onnx::AttributeProto::INT);
  axis->set_i(1);
  EXPECT_EQ(EmbeddingSkipReason(*gather, w, 0), "Gather with axis != 0");
  EXPECT_FALSE(HasEmbedding(&g, 0));

  ConstWeight t;
  ASSERT_TRUE(ResolveWeight(&g, "T", &t));
  EXPECT_EQ(EmbeddingSkipReason(*gather, t, 0), "embedding data is a Transpose");
}

TEST(WeightMatcherTest, LmHeadIsTheConstantMatMulNearestTheLogits) {
  onnx::GraphProto g = Weights();
  *g.add_output() = Value("logits", kOnnxFloat, {1, 3});
  AddNode(&g, "MatMul", "body", {"x", "W"}, {"h"});  // not the nearest
  AddNode(&g, "MatMul", "head", {"h", "T"}, {"z"});
  AddNode(&g, "Relu", "act", {"z"}, {"logits"});
  const onnx::NodeProto* head = FindLmHead(g);
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->name(), "head");

  g.mutable_output(0)->set_name("y");  // no logits output: no LM head
  g.mutable_node(g.node_size() - 1)->set_output(0, "y");
  EXPECT_EQ(FindLmHead(g), nullptr);
}

TEST(WeightMatcherTest, LmHeadFoundByStructureOrByName) {
  // ids -> Gather(E[50, 8]) -> MatMul(W[8, 8]) -> MatMul(H[8, 50]) -> Reshape
  // -> Tanh softcap (Div, Tanh, Mul) -> "out": no output is called logits.
  onnx::GraphProto g;
  *g.add_initializer() = FloatTensor("E", {50, 8}, RandomFloats(400, 1));
  *g.add_initializer() = FloatTensor("W", {8, 8}, RandomFloats(64, 2));
  *g.add_initializer() = FloatTensor("H", {8, 50}, RandomFloats(400, 3));
  *g.add_initializer() = FloatTensor("cap", {1}, {30.0f});
  *g.add_output() = Value("out", kOnnxFloat, {1, 50});
  AddNode(&g, "Gather", "embed", {"E", "ids"}, {"e"});
  AddNode(&g, "MatMul", "body", {"e", "W"}, {"h"});
  AddNode(&g, "MatMul", "proj", {"h", "H"}, {"z"});
  AddNode(&g, "Reshape", "reshape", {"z", "shape"}, {"r"});
  AddNode(&g, "Div", "div", {"r", "cap"}, {"d"});
  AddNode(&g, "Tanh", "tanh", {"d"}, {"t"});
  AddNode(&g, "Mul", "mul", {"t", "cap"}, {"out"});
  EXPECT_EQ(FindLmHead(g), nullptr);
  const onnx::NodeProto* head = FindLmHeadByStructure(g);
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->name(), "proj");
  auto located = LocateLmHead(g, "");
  ASSERT_TRUE(located.ok());
  EXPECT_EQ(*located, head);

  // Named by the user.
  located = LocateLmHead(g, "body");
  ASSERT_TRUE(located.ok());
  EXPECT_EQ((*located)->name(), "body");
  EXPECT_EQ(LocateLmHead(g, "tanh").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LocateLmHead(g, "nothing").status().code(), absl::StatusCode::kInvalidArgument);

  // A width that is not the vocabulary is not a head.
  *g.mutable_initializer(2) = FloatTensor("H", {8, 49}, RandomFloats(392, 3));
  EXPECT_EQ(FindLmHeadByStructure(g), nullptr);
  // Nor is anything without an embedding table.
  *g.mutable_initializer(2) = FloatTensor("H", {8, 50}, RandomFloats(400, 3));
  ASSERT_NE(FindLmHeadByStructure(g), nullptr);
  g.mutable_node(0)->set_op_type("Identity");
  EXPECT_EQ(FindLmHeadByStructure(g), nullptr);
}

}  // namespace
}  // namespace quantd::core
