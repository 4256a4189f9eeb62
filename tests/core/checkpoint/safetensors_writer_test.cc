#include "quantd/core/checkpoint/safetensors_writer.h"

#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/testing/status_matchers.h"
#include "quantd/testing/test_dir.h"
#include "safetensors_test_reader.h"

namespace quantd::core::checkpoint {
namespace {

namespace fs = std::filesystem;
using ::quantd::testing::ReadAll;
using ::quantd::testing::ReadTestSafetensors;
using ::quantd::testing::StatusIs;

class SafetensorsWriterTest : public ::quantd::testing::TestDirTest {
 protected:
  size_t FilesInDir() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), {}));
  }
};

// Compact JSON with sorted keys, no padding: mx.save_safetensors' header.
// Data follows the order the tensors were given in.
TEST_F(SafetensorsWriterTest, WritesMlxHeaderAndDataInGivenOrder) {
  std::vector<SafetensorsTensorSpec> specs = {
      {"b.weight", "U32", {1, 2}},
      {"a.scales", "BF16", {1, 1}},
      {"A.norm", "F32", {2}},
  };
  SafetensorsWriterOptions opt;
  opt.metadata["format"] = "mlx";
  auto w = SafetensorsWriter::Create(Path("m.safetensors"), specs, opt);
  ASSERT_TRUE(w.ok()) << w.status();
  const uint8_t b_weight[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const uint8_t a_scales[2] = {0x80, 0x3F};
  const float norm[2] = {1.0f, -2.0f};
  ASSERT_TRUE((*w)->Write(b_weight, 5).ok());  // pieces may split a tensor
  EXPECT_EQ((*w)->current_tensor()->name, "b.weight");
  ASSERT_TRUE((*w)->Write(b_weight + 5, 3).ok());
  EXPECT_EQ((*w)->current_tensor()->name, "a.scales");
  ASSERT_TRUE((*w)->Write(a_scales, 2).ok());
  ASSERT_TRUE((*w)->Write(norm, 8).ok());
  EXPECT_EQ((*w)->current_tensor(), nullptr);
  ASSERT_TRUE((*w)->Commit().ok());

  const std::string want_header =
      R"({"A.norm":{"data_offsets":[10,18],"dtype":"F32","shape":[2]},)"
      R"("__metadata__":{"format":"mlx"},)"
      R"("a.scales":{"data_offsets":[8,10],"dtype":"BF16","shape":[1,1]},)"
      R"("b.weight":{"data_offsets":[0,8],"dtype":"U32","shape":[1,2]}})";
  std::vector<uint8_t> file = ReadAll(Path("m.safetensors"));
  ASSERT_EQ(file.size(), 8 + want_header.size() + 18);
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= static_cast<uint64_t>(file[i]) << (8 * i);
  EXPECT_EQ(len, want_header.size());
  EXPECT_EQ(std::string(file.begin() + 8, file.begin() + 8 + len), want_header);
  std::vector<uint8_t> data(file.begin() + 8 + len, file.end());
  EXPECT_EQ(std::vector<uint8_t>(data.begin(), data.begin() + 8),
            std::vector<uint8_t>(b_weight, b_weight + 8));
  EXPECT_EQ(data[8], 0x80);
  EXPECT_EQ(data[9], 0x3F);

  auto st = ReadTestSafetensors(Path("m.safetensors"));
  ASSERT_TRUE(st.ok) << st.error;
  EXPECT_EQ(st.metadata.at("format"), "mlx");
  EXPECT_EQ(st.tensors.at("A.norm").shape, (std::vector<int64_t>{2}));
  EXPECT_EQ((*w)->file_bytes(), file.size());
}

TEST_F(SafetensorsWriterTest, PadsHeaderWithSpacesWhenAsked) {
  SafetensorsWriterOptions opt;
  opt.header_alignment = 8;
  auto w = SafetensorsWriter::Create(Path("p.safetensors"), {{"x", "U8", {3}}}, opt);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("abc", 3).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ((*w)->data_offset() % 8, 0u);
  auto st = ReadTestSafetensors(Path("p.safetensors"));
  ASSERT_TRUE(st.ok) << st.error;
  EXPECT_EQ(st.header_text.back(), ' ');
  EXPECT_TRUE(st.metadata.empty());
  EXPECT_THAT(st.header_text, ::testing::Not(::testing::HasSubstr("__metadata__")));
  EXPECT_EQ(st.tensors.at("x").bytes, (std::vector<uint8_t>{'a', 'b', 'c'}));
}

TEST_F(SafetensorsWriterTest, RefusesBadSpecs) {
  EXPECT_THAT(
      SafetensorsWriter::Create(Path("e.safetensors"), {{"x", "F32", {1}}, {"x", "F32", {1}}})
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument, "listed twice"));
  EXPECT_THAT(SafetensorsWriter::Create(Path("e.safetensors"), {{"x", "F8", {1}}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown safetensors dtype F8"));
  EXPECT_THAT(
      SafetensorsWriter::Create(Path("e.safetensors"), {{"__metadata__", "U8", {1}}}).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, "invalid safetensors tensor name"));
  EXPECT_THAT(SafetensorsWriter::Create(Path("e.safetensors"), {{"x", "U8", {-1}}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "negative dimension"));
  EXPECT_EQ(FilesInDir(), 0u);
}

// Too many bytes, or too few at Commit: an error, and no file is left behind.
TEST_F(SafetensorsWriterTest, CountsBytesAndLeavesNoFileOnFailure) {
  {
    auto w = SafetensorsWriter::Create(Path("c.safetensors"), {{"x", "F32", {2}}});
    ASSERT_TRUE(w.ok());
    EXPECT_THAT((*w)->Write(std::vector<uint8_t>(9).data(), 9),
                StatusIs(absl::StatusCode::kFailedPrecondition, "tensors hold 8"));
    ASSERT_TRUE((*w)->Write(std::vector<uint8_t>(4).data(), 4).ok());
    EXPECT_THAT((*w)->Commit(),
                StatusIs(absl::StatusCode::kFailedPrecondition, "4 data bytes missing (tensor x)"));
  }
  EXPECT_EQ(FilesInDir(), 0u);
}

TEST(SafetensorsDtypeTest, Sizes) {
  EXPECT_EQ(SafetensorsDtypeSize("BF16"), 2);
  EXPECT_EQ(SafetensorsDtypeSize("U32"), 4);
  EXPECT_EQ(SafetensorsDtypeSize("BOOL"), 1);
  EXPECT_EQ(SafetensorsDtypeSize("bf16"), 0);
  EXPECT_EQ((SafetensorsTensorSpec{"x", "F16", {3, 5}}).nbytes(), 30u);
  EXPECT_EQ((SafetensorsTensorSpec{"x", "F64", {}}).nbytes(), 8u);
}

}  // namespace
}  // namespace quantd::core::checkpoint
