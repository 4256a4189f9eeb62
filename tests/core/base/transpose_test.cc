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

// Transposing to halves: the bits and counts of the float transpose followed
// by FloatToHalfSpan_ref, from float32 (values to clamp, to flush and NaNs
// among them), bfloat16 and half sources, at an odd address too.
TEST_P(TransposeVariantTest, NarrowsToHalves) {
  const CpuLevel level = GetParam();
  if (HostCpuLevel() < level) GTEST_SKIP() << "CPU lacks " << CpuLevelName(level);
  ScopedCpuLevelCap cap(level);
  std::mt19937 rng(9);
  for (auto [rows, cols] :
       {std::pair<int64_t, int64_t>{1, 1}, {8, 8}, {7, 9}, {256, 64}, {13, 40}, {17, 8}, {8, 17}}) {
    const int64_t src_ld = cols + 3, dst_ld = rows + 5;
    const size_t count = static_cast<size_t>(rows * src_ld);
    std::vector<float> f32(count);
    for (float& f : f32) {
      const uint32_t bits = rng();
      std::memcpy(&f, &bits, 4);
      if (bits % 3 == 0) f = std::ldexp(static_cast<float>(bits % 1000) - 500.0f, bits % 60 - 40);
    }
    std::vector<uint16_t> b16(count);
    for (uint16_t& v : b16) v = static_cast<uint16_t>(rng());
    std::vector<unsigned char> odd(count * 2 + 1);
    std::memcpy(odd.data() + 1, b16.data(), count * 2);
    for (int kind = 0; kind < 5; ++kind) {  // f32, bf16, f16, bf16 odd, f16 odd
      std::vector<float> wide(static_cast<size_t>(cols * dst_ld), 0.0f);
      std::vector<uint16_t> got(static_cast<size_t>(cols * dst_ld), 0x7777);
      NarrowingStats stats;
      const void* b = kind >= 3 ? static_cast<const void*>(odd.data() + 1) : b16.data();
      if (kind == 0) {
        TransposeFloats_ref(f32.data(), rows, cols, src_ld, wide.data(), dst_ld);
        TransposeFloatsToHalves(f32.data(), rows, cols, src_ld, got.data(), dst_ld, &stats);
      } else if (kind % 2 == 1) {
        TransposeBfloat16ToFloats_ref(b, rows, cols, src_ld, wide.data(), dst_ld);
        TransposeBfloat16ToHalves(b, rows, cols, src_ld, got.data(), dst_ld, &stats);
      } else {
        TransposeHalfToFloats_ref(b, rows, cols, src_ld, wide.data(), dst_ld);
        TransposeHalfToHalves(b, rows, cols, src_ld, got.data(), dst_ld, &stats);
      }
      NarrowingStats want_stats;
      for (int64_t c = 0; c < cols; ++c) {
        std::vector<uint16_t> want(static_cast<size_t>(rows));
        FloatToHalfSpan_ref(wide.data() + c * dst_ld, want.data(), static_cast<size_t>(rows),
                            &want_stats);
        for (int64_t r = 0; r < dst_ld; ++r) {
          const uint16_t g = got[static_cast<size_t>(c * dst_ld + r)];
          if (r >= rows) {
            ASSERT_EQ(g, 0x7777) << "outside the matrix at " << r << "," << c;
            continue;
          }
          const uint16_t w = want[static_cast<size_t>(r)];
          if ((w & 0x7c00) == 0x7c00 && (w & 0x3ff) != 0) {  // NaN: any NaN
            ASSERT_TRUE((g & 0x7c00) == 0x7c00 && (g & 0x3ff) != 0) << kind << " at " << r;
          } else {
            ASSERT_EQ(g, w) << CpuLevelName(level) << " kind " << kind << " " << rows << "x" << cols
                            << " at " << r << "," << c;
          }
        }
      }
      EXPECT_EQ(stats.clamped, want_stats.clamped) << CpuLevelName(level) << " kind " << kind;
      EXPECT_EQ(stats.flushed, want_stats.flushed) << CpuLevelName(level) << " kind " << kind;
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
