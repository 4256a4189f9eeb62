#include "quantd/core/base/model_id.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quantd/core/base/sha256.h"
#include "quantd/testing/status_matchers.h"

namespace quantd::core {
namespace {
using ::quantd::testing::StatusIs;

// The formula of Model.model_id in quantd.proto, spelled out by hand.
TEST(ModelIdTest, FollowsTheDocumentedFormula) {
  const std::string a(64, 'a'), b(64, 'b');
  std::vector<ModelFileDigest> files = {{"model.onnx", 10, a}, {"model.onnx.data", 19, b}};
  EXPECT_EQ(ModelIdOf(files), "sha256:" + Sha256Hex("quantd-model-v1\nmodel.onnx\n10\n" + a +
                                                    "\nmodel.onnx.data\n19\n" + b + "\n"));
}

TEST(ModelIdTest, OrderNamesSizesAndDigestsAllCount) {
  const std::string a(64, 'a'), b(64, 'b');
  const std::string base = ModelIdOf({{"x", 1, a}, {"y", 2, b}});
  EXPECT_NE(ModelIdOf({{"y", 2, b}, {"x", 1, a}}), base);
  EXPECT_NE(ModelIdOf({{"z", 1, a}, {"y", 2, b}}), base);
  EXPECT_NE(ModelIdOf({{"x", 3, a}, {"y", 2, b}}), base);
  EXPECT_NE(ModelIdOf({{"x", 1, b}, {"y", 2, b}}), base);
}

struct FakeFileInfo {  // the accessors of quantd.v1.FileInfo
  std::string n, s;
  uint64_t size;
  const std::string& name() const { return n; }
  uint64_t size_bytes() const { return size; }
  const std::string& sha256() const { return s; }
};

TEST(ModelIdTest, AnyRangeOfFileInfosGivesTheSameId) {
  const std::string a(64, 'a');
  std::vector<FakeFileInfo> infos = {{"m.gguf", a, 7}};
  EXPECT_EQ(ModelIdOfFiles(infos), ModelIdOf({{"m.gguf", 7, a}}));
}

TEST(ModelIdTest, HexIsTheDigestOfAWellFormedId) {
  const std::string id = ModelIdOf({{"m", 1, std::string(64, 'c')}});
  auto hex = ModelIdHex(id);
  ASSERT_TRUE(hex.ok());
  EXPECT_EQ("sha256:" + *hex, id);
  EXPECT_THAT(ModelIdHex("sha256:xyz").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "malformed"));
  EXPECT_THAT(ModelIdHex(*hex).status(), StatusIs(absl::StatusCode::kInvalidArgument, "malformed"));
}

}  // namespace
}  // namespace quantd::core
