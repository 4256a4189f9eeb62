// SafetensorsFile: every header refusal, with the code and the message
// naming the file / tensor / offset.
#include "quantd/core/checkpoint/safetensors.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/half.h"
#include "quantd/testing/status_matchers.h"
#include "test_checkpoints.h"

namespace quantd::core::checkpoint {
namespace {

namespace fs = std::filesystem;
using ::quantd::testing::StatusIs;
using testing::FakeTensor;
using testing::FakeValue;
using testing::RawSafetensors;
using testing::SafetensorsBytes;
using testing::WriteBytes;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("safetensors_test_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& bytes) {
    const std::string path = (dir_ / "model.safetensors").string();
    WriteBytes(path, bytes);
    return path;
  }
  fs::path dir_;
};

TEST_F(SafetensorsTest, ReadsTensorsSortedByNameWithTheirData) {
  const std::string path =
      Write(SafetensorsBytes({{"b.weight", {2, 3}, "F32"}, {"a.weight", {4}, "BF16"}}));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 2u);
  EXPECT_EQ((*file)->tensors()[0].name, "a.weight");
  EXPECT_EQ((*file)->tensors()[0].dtype, SafetensorsDtype::kBF16);
  EXPECT_EQ((*file)->tensors()[0].nbytes, 8u);
  const SafetensorsTensor* b = (*file)->Find("b.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2, 3}));
  float v[6];
  std::memcpy(v, (*file)->Data(*b).data(), sizeof(v));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(v[i], FakeValue("b.weight", i));
  EXPECT_EQ((*file)->Find("c.weight"), nullptr);
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  EXPECT_THAT(SafetensorsFile::Open((dir_ / "absent.safetensors").string()).status(),
              StatusIs(absl::StatusCode::kNotFound, "absent.safetensors"));
}

TEST_F(SafetensorsTest, FileShorterThanTheLengthFieldIsDataLoss) {
  EXPECT_THAT(SafetensorsFile::Open(Write("abc")).status(),
              StatusIs(absl::StatusCode::kDataLoss, "truncated"));
}

TEST_F(SafetensorsTest, HeaderPastTheEndOfTheFileIsDataLoss) {
  std::string bytes = SafetensorsBytes({{"w", {4}, "F32"}});
  bytes.resize(20);  // cut inside the header
  EXPECT_THAT(SafetensorsFile::Open(Write(bytes)).status(),
              StatusIs(absl::StatusCode::kDataLoss, "runs past the end"));
}

TEST_F(SafetensorsTest, TruncatedDataIsDataLossNamingTensorAndOffsets) {
  std::string bytes = SafetensorsBytes({{"a", {4}, "F32"}, {"b", {8}, "F32"}});
  bytes.resize(bytes.size() - 5);
  const auto st = SafetensorsFile::Open(Write(bytes)).status();
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kDataLoss, "tensor 'b' occupies file bytes"));
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kDataLoss, "model.safetensors"));
}

TEST_F(SafetensorsTest, HeaderLargerThan100MiBIsRefusedUnread) {
  std::string bytes(16, '\0');
  const uint64_t n = kMaxSafetensorsHeaderBytes + 1;
  std::memcpy(bytes.data(), &n, 8);
  EXPECT_THAT(SafetensorsFile::Open(Write(bytes)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "exceeds the 104857600-byte limit"));
}

TEST_F(SafetensorsTest, GarbageJsonIsInvalidArgument) {
  EXPECT_THAT(SafetensorsFile::Open(Write(RawSafetensors("{\"w\": {\"dtype\": ", ""))).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "not well-formed JSON"));
  EXPECT_THAT(SafetensorsFile::Open(Write(RawSafetensors("[1, 2]", ""))).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a JSON object"));
}

TEST_F(SafetensorsTest, DeeplyNestedJsonBombIsRefusedBeforeParsing) {
  const std::string bomb = std::string(1 << 20, '[') + std::string(1 << 20, ']');
  EXPECT_THAT(SafetensorsFile::Open(Write(RawSafetensors(bomb, ""))).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "nests deeper"));
}

TEST_F(SafetensorsTest, OffsetsThatDisagreeWithDtypeAndShapeAreRefused) {
  const std::string header = R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}})";
  EXPECT_THAT(SafetensorsFile::Open(Write(RawSafetensors(header, std::string(16, '\0')))).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "tensor 'w': data_offsets [0, 12] hold 12 bytes but F32"));
}

TEST_F(SafetensorsTest, ReversedOffsetsAreRefused) {
  const std::string header = R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}})";
  EXPECT_THAT(SafetensorsFile::Open(Write(RawSafetensors(header, std::string(16, '\0')))).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "reversed"));
}

TEST_F(SafetensorsTest, OverlappingTensorsAreRefusedNamingBoth) {
  const std::string header = R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
                             R"( "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})";
  const auto st =
      SafetensorsFile::Open(Write(RawSafetensors(header, std::string(24, '\0')))).status();
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument, "tensor 'b'"));
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument, "overlaps tensor 'a'"));
}

TEST_F(SafetensorsTest, UnsupportedDtypeIsRefusedNamingTheTensor) {
  const std::string path =
      Write(SafetensorsBytes({{"ok", {2}, "F16"}, {"model.quant_scale", {2}, "I8"}}));
  EXPECT_THAT(
      SafetensorsFile::Open(path).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, "tensor 'model.quant_scale' has dtype I8"));
}

TEST_F(SafetensorsTest, MalformedEntriesAreRefused) {
  for (const char* header : {
           R"({"w": 3})",
           R"({"w": {"shape": [1], "data_offsets": [0, 4]}})",
           R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
           R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})",
           R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})",
           R"({"__metadata__": 7})",
       }) {
    EXPECT_THAT(SafetensorsFile::Open(Write(RawSafetensors(header, std::string(4, '\0')))).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, "model.safetensors"))
        << header;
  }
}

TEST_F(SafetensorsTest, ShapeWhoseByteSizeOverflowsIsRefused) {
  const std::string header =
      R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})";
  EXPECT_THAT(SafetensorsFile::Open(Write(RawSafetensors(header, std::string(4, '\0')))).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "too large"));
}

TEST(DtypeTest, ParsesTheThreeFloatNamesOnly) {
  EXPECT_EQ(ParseDtype("F32"), SafetensorsDtype::kF32);
  EXPECT_EQ(ParseDtype("F16"), SafetensorsDtype::kF16);
  EXPECT_EQ(ParseDtype("BF16"), SafetensorsDtype::kBF16);
  for (const char* other : {"f32", "F64", "I32", "BF16 ", ""}) {
    EXPECT_FALSE(ParseDtype(other).has_value()) << other;
  }
}

// Elements at an odd address (a header length that is not a multiple of 8)
// and a count that crosses the widening's internal chunks, against the
// scalar conversions element by element.
TEST(DtypeTest, WidensEveryDtypeFromAnyAddress) {
  constexpr size_t kCount = 5003;
  std::vector<uint16_t> bits(kCount);
  for (size_t i = 0; i < kCount; ++i) bits[i] = static_cast<uint16_t>(i * 40503u + 7u);
  std::vector<float> floats(kCount);
  for (size_t i = 0; i < kCount; ++i) floats[i] = static_cast<float>(i) * 0.37f - 900.0f;
  for (size_t shift : {0, 1, 3}) {
    std::vector<uint8_t> buf(kCount * 4 + 8);
    uint8_t* src = buf.data() + shift;
    std::vector<float> out(kCount);
    for (SafetensorsDtype d : {SafetensorsDtype::kF16, SafetensorsDtype::kBF16}) {
      std::memcpy(src, bits.data(), kCount * 2);
      DtypeToFloat(d, src, kCount, out.data());
      for (size_t i = 0; i < kCount; ++i) {
        const float want =
            d == SafetensorsDtype::kF16 ? HalfToFloat(bits[i]) : Bfloat16ToFloat(bits[i]);
        if (std::isnan(want)) {
          ASSERT_TRUE(std::isnan(out[i])) << DtypeName(d) << " shift " << shift << " at " << i;
        } else {
          ASSERT_EQ(out[i], want) << DtypeName(d) << " shift " << shift << " at " << i;
        }
      }
    }
    std::memcpy(src, floats.data(), kCount * 4);
    DtypeToFloat(SafetensorsDtype::kF32, src, kCount, out.data());
    EXPECT_EQ(out, floats) << "shift " << shift;
  }
}

TEST(JsonNestingDepthTest, IgnoresBracketsInsideStrings) {
  EXPECT_EQ(JsonNestingDepth(R"({"a": [1, {"b": "[[[\"]]]"}]})"), 3);
  EXPECT_EQ(JsonNestingDepth("7"), 0);
}

}  // namespace
}  // namespace quantd::core::checkpoint
