#include "core/onnx/graph_edit.h"

#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_models.h"

namespace quantd::core {
namespace {

using ::quantd::testing::MakeTempDir;
using ::quantd::testing::SmallMlp;

std::vector<std::string> NodeNames(const onnx::GraphProto& g) {
  std::vector<std::string> out;
  for (const auto& n : g.node()) out.push_back(n.name());
  return out;
}

class GraphEditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("quantd-graph-edit");
    auto model = OnnxModel::FromProto(SmallMlp(), dir_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::unique_ptr<OnnxModel> model_;
};

TEST_F(GraphEditTest, CacheKeysAreDistinctPerField) {
  GraphEdit edit(model_.get());
  const onnx::GraphProto* g1 = &model_->proto().graph();
  onnx::GraphProto other;
  const onnx::GraphProto* g2 = &other;
  const CacheKey base{g1, Product::kInt8Qdq, "W", false};
  edit.Cached(base).push_back("W_DQ");
  EXPECT_THAT(edit.Cached(CacheKey{g1, Product::kInt8Qdq, "W", false}),
              ::testing::ElementsAre("W_DQ"));
  for (const CacheKey& k :
       {CacheKey{g2, Product::kInt8Qdq, "W", false}, CacheKey{g1, Product::kInt4Qdq, "W", false},
        CacheKey{g1, Product::kInt8Qdq, "W2", false}, CacheKey{g1, Product::kInt8Qdq, "W", true}}) {
    EXPECT_FALSE(k == base);
    EXPECT_TRUE(k < base || base < k);
    EXPECT_TRUE(edit.Cached(k).empty());
  }
  // Names that a joined string key could confuse stay apart.
  edit.Cached({g1, Product::kInt8Qdq, "a/1", false}).push_back("x");
  EXPECT_TRUE(edit.Cached({g1, Product::kInt8Qdq, "a", true}).empty());
  EXPECT_TRUE(edit.Cached({g1, Product::kInt8Qdq, "a/1", true}).empty());
}

TEST_F(GraphEditTest, RebuildNodesInsertsAndReplacesInOrder) {
  GraphEdit edit(model_.get());
  onnx::GraphProto* g = model_->proto().mutable_graph();
  ASSERT_EQ(g->node_size(), 4);
  const std::vector<std::string> before = NodeNames(*g);
  const onnx::NodeProto* first = &g->node(0);
  const onnx::NodeProto* third = &g->node(2);
  edit.InsertBefore(first, edit.MakeNode("Identity", "pre_a", {"x"}, {"xa"}));
  edit.InsertBefore(first, edit.MakeNode("Identity", "pre_b", {"xa"}, {"xb"}));
  std::vector<onnx::NodeProto> replacement;
  replacement.push_back(edit.MakeNode("Identity", "new_1", {"r0"}, {"r1"}));
  replacement.push_back(edit.MakeNode("Identity", "new_2", {"r1"}, {"r2"}));
  edit.Replace(third, std::move(replacement));
  edit.RebuildNodes(g);
  EXPECT_THAT(NodeNames(*g), ::testing::ElementsAre("pre_a", "pre_b", before[0], before[1], "new_1",
                                                    "new_2", before[3]));
  // The queue is spent: a second rebuild changes nothing.
  edit.RebuildNodes(g);
  EXPECT_EQ(g->node_size(), 7);
}

TEST_F(GraphEditTest, MintedNamesAvoidTheModelsNames) {
  GraphEdit edit(model_.get());
  const std::string taken = model_->proto().graph().node(0).output(0);
  EXPECT_EQ(edit.UniqueName(taken), taken + "_1");
  EXPECT_EQ(edit.UniqueName(taken), taken + "_2");
  EXPECT_EQ(edit.UniqueName("fresh"), "fresh");
  onnx::NodeProto n = edit.MakeNode("Cast", "fresh", {"a"}, {"b"});
  EXPECT_EQ(n.name(), "fresh_1");
  SetIntAttr(&n, "to", 1);
  SetIntAttr(&n, "to", 10);
  ASSERT_EQ(n.attribute_size(), 1);
  EXPECT_EQ(n.attribute(0).i(), 10);
}

}  // namespace
}  // namespace quantd::core
