#include "quantd/core/quant/nibble_pack.h"

#include <cstdint>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace quantd::core::quant {
namespace {

TEST(NibblePackTest, EvenIndexIsTheLowNibble) {
  std::vector<uint8_t> packed(NibbleBytes(5), 0);
  ASSERT_EQ(packed.size(), 3u);
  for (int64_t i = 0; i < 5; ++i) OrNibble(packed.data(), i, static_cast<uint8_t>(i + 1));
  EXPECT_THAT(packed, ::testing::ElementsAre(0x21, 0x43, 0x05));
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(GetNibble(packed.data(), i), i + 1);
}

TEST(NibblePackTest, TransposeKnownMatrix) {
  // [2, 3] codes 0..5 row-major -> [3, 2]: 0 3 / 1 4 / 2 5.
  const std::vector<uint8_t> in = {0x10, 0x32, 0x54};
  std::vector<uint8_t> out(3, 0xFF);
  TransposeNibbles(in.data(), 2, 3, out.data());
  EXPECT_THAT(out, ::testing::ElementsAre(0x30, 0x41, 0x52));
}

TEST(NibblePackTest, TransposeMatchesElementwiseOnRaggedShapes) {
  std::mt19937 rng(7);
  for (int64_t rows : {1, 3, 7, 16}) {
    for (int64_t cols : {1, 2, 5, 33}) {
      const int64_t count = rows * cols;
      std::vector<uint8_t> in(NibbleBytes(count));
      for (auto& b : in) b = static_cast<uint8_t>(rng());
      std::vector<uint8_t> out(NibbleBytes(count), 0xAA);  // every byte must be written
      TransposeNibbles(in.data(), rows, cols, out.data());
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          ASSERT_EQ(GetNibble(out.data(), c * rows + r), GetNibble(in.data(), r * cols + c))
              << rows << "x" << cols << " at " << r << "," << c;
        }
      }
      // An odd count leaves the unused high nibble 0, whatever the input had.
      if (count % 2 == 1) {
        EXPECT_EQ(out.back() >> 4, 0) << rows << "x" << cols;
      }
      std::vector<uint8_t> back(NibbleBytes(count));
      TransposeNibbles(out.data(), cols, rows, back.data());
      for (int64_t i = 0; i < count; ++i) {
        ASSERT_EQ(GetNibble(back.data(), i), GetNibble(in.data(), i)) << rows << "x" << cols;
      }
    }
  }
}

}  // namespace
}  // namespace quantd::core::quant
