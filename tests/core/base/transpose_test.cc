#include "quantd/core/base/transpose.h"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/half.h"

namespace quantd::core {
namespace {

// Every variant (each CPU level this machine has) writes exactly the
// transpose, on shapes with ragged 8-wide edges and leading dimensions
// wider than the matrix; what lies outside the destination's cells stays.
class TransposeVariantTest : public ::testing::TestWithParam<CpuLevel> {};

TEST_P(TransposeVariantTest, WritesTheTranspose) {
  const CpuLevel level = GetParam();
  if (HostCpuLevel() < level) GTEST_SKIP() << "CPU lacks " << CpuLevelName(level);
  ScopedCpuLevelCap cap(level);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1},
                            {8, 8},
                            {7, 9},
                            {64, 3072},
                            {13, 40},
                            {17, 8},
                            {8, 17}}) {
    const int64_t src_ld = cols + 3, dst_ld = rows + 5;
    std::vector<float> src(static_cast<size_t>(rows * src_ld));
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) * 0.5f - 7.0f;
    std::vector<float> dst(static_cast<size_t>(cols * dst_ld), -1.0f);
    TransposeFloats(src.data(), rows, cols, src_ld, dst.data(), dst_ld);
    for (int64_t c = 0; c < cols; ++c) {
      for (int64_t r = 0; r < dst_ld; ++r) {
        const float want = r < rows ? src[r * src_ld + c] : -1.0f;
        ASSERT_EQ(dst[c * dst_ld + r], want)
            << CpuLevelName(level) << " " << rows << "x" << cols << " at " << r << "," << c;
      }
    }
  }
}

// The widening transposes from 16-bit floats: every bit pattern (NaNs,
// infinities, subnormals included) lands as the scalar widening's bits
// (a half NaN as a NaN: F16C quiets signalling ones), on the same ragged
// shapes; cells outside the destination stay.
TEST_P(TransposeVariantTest, WidensSixteenBitFloats) {
  const CpuLevel level = GetParam();
  if (HostCpuLevel() < level) GTEST_SKIP() << "CPU lacks " << CpuLevelName(level);
  ScopedCpuLevelCap cap(level);
  std::mt19937 rng(7);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1},
                            {8, 8},
                            {7, 9},
                            {256, 256},
                            {64, 3072},
                            {13, 40},
                            {17, 8},
                            {8, 17}}) {
    const int64_t src_ld = cols + 3, dst_ld = rows + 5;
    std::vector<uint16_t> src(static_cast<size_t>(rows * src_ld));
    for (uint16_t& v : src) v = static_cast<uint16_t>(rng());
    // The same elements at an odd address (an unpadded safetensors header).
    std::vector<unsigned char> odd(src.size() * 2 + 1);
    std::memcpy(odd.data() + 1, src.data(), src.size() * 2);
    for (auto [bf16, base] : {std::pair<bool, const void*>{true, src.data()},
                              {false, src.data()},
                              {true, odd.data() + 1},
                              {false, odd.data() + 1}}) {
      std::vector<float> dst(static_cast<size_t>(cols * dst_ld), -1.0f);
      if (bf16) {
        TransposeBfloat16ToFloats(base, rows, cols, src_ld, dst.data(), dst_ld);
      } else {
        TransposeHalfToFloats(base, rows, cols, src_ld, dst.data(), dst_ld);
      }
      for (int64_t c = 0; c < cols; ++c) {
        for (int64_t r = 0; r < dst_ld; ++r) {
          float want = -1.0f;
          if (r < rows) {
            const uint16_t h = src[r * src_ld + c];
            want = bf16 ? Bfloat16ToFloat(h) : HalfToFloat(h);
          }
          const float got = dst[c * dst_ld + r];
          if (!bf16 && std::isnan(want)) {
            ASSERT_TRUE(std::isnan(got)) << CpuLevelName(level) << " at " << r << "," << c;
            continue;
          }
          ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
              << CpuLevelName(level) << (bf16 ? " bf16 " : " f16 ") << rows << "x" << cols << " at "
              << r << "," << c;
        }
      }
    }
  }
}

std::string LevelName(const ::testing::TestParamInfo<CpuLevel>& info) {
  std::string name(CpuLevelName(info.param));
  name[0] = static_cast<char>(std::toupper(name[0]));
  return name;
}

INSTANTIATE_TEST_SUITE_P(Levels, TransposeVariantTest, ::testing::ValuesIn(kAllCpuLevels),
                         LevelName);

}  // namespace
}  // namespace quantd::core
