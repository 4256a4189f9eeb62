// ggml block kernels: the fast kernels must write exactly the reference's
// bytes, and every type must round-trip within its named tolerance.
#include "quantd/core/gguf/quants.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace quantd::core::gguf {
namespace {

const GgmlType kTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0,
                           GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1,
                           GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K,
                           GgmlType::kQ6_K, GgmlType::kIQ4_NL};

// Relative RMS error bound for Gaussian data, per type.
double Tolerance(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: return 0;
    case GgmlType::kF16: return 1e-3;
    case GgmlType::kBF16: return 5e-3;
    case GgmlType::kQ8_0: return 0.01;
    case GgmlType::kQ6_K: return 0.03;
    case GgmlType::kQ5_0: case GgmlType::kQ5_1: case GgmlType::kQ5_K: return 0.06;
    case GgmlType::kQ4_0: case GgmlType::kQ4_1: case GgmlType::kQ4_K: case GgmlType::kIQ4_NL: return 0.12;
    case GgmlType::kQ3_K: return 0.25;
    case GgmlType::kQ2_K: return 0.45;
    default: return 0;
  }
}

// Rows of 512 values with the cases that exercise branches: Gaussian at two
// scales, all-zero and constant blocks, tiny values near the all-zero
// threshold, ties of the largest magnitude with both signs, outliers.
std::vector<float> TestData(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> small(0.0f, 0.02f), big(0.0f, 3.0f);
  std::vector<float> x;
  auto row = [&](auto gen) {
    for (int i = 0; i < 512; ++i) x.push_back(gen(i));
  };
  row([&](int) { return small(rng); });
  row([&](int) { return big(rng); });
  row([&](int i) { return i < 256 ? 0.0f : small(rng); });
  row([&](int) { return 0.125f; });
  row([&](int i) { return (i % 3 == 0 ? -1.0f : 1.0f) * 1e-18f * static_cast<float>(i % 7); });
  row([&](int i) { return i % 32 == 5 ? 2.0f : (i % 32 == 9 ? -2.0f : small(rng)); });
  row([&](int i) { return i % 37 == 0 ? 40.0f * small(rng) / 0.02f : small(rng); });
  row([&](int i) { return std::fabs(small(rng)) + (i % 64 == 0 ? 1.0f : 0.0f); });
  row([&](int i) { return -std::fabs(big(rng)); });
  // Non-finite values: garbage in, but the same garbage as the reference.
  row([&](int i) {
    return i % 97 == 3 ? std::numeric_limits<float>::infinity()
                       : (i % 89 == 7 ? std::numeric_limits<float>::quiet_NaN() : small(rng));
  });
  return x;
}

class QuantsTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(QuantsTest, FastKernelWritesReferenceBytes) {
  const GgmlType t = GetParam();
  for (uint32_t seed : {1u, 2u, 3u}) {
    const std::vector<float> x = TestData(seed);
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<uint8_t> ref(RowBytes(t, n)), fast(RowBytes(t, n), 0xAA);
    QuantizeRow_ref(t, x.data(), ref.data(), n);
    QuantizeRow(t, x.data(), fast.data(), n);
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_EQ(ref[i], fast[i]) << TypeName(t) << " seed " << seed << " byte " << i << " (block "
                                 << i / TypeInfo(t).type_size << ")";
    }
  }
}

TEST_P(QuantsTest, FastKernelHandlesPartialPasses) {
  // Block counts that leave the vector kernels' multi-block passes partly
  // filled (K-quants pair super-blocks, IQ4_NL runs 16 blocks per pass).
  const GgmlType t = GetParam();
  const std::vector<float> x = TestData(5);
  for (int64_t blocks : {1, 3, 7, 17, 33}) {
    const int64_t n = blocks * TypeInfo(t).block_size;
    if (n > static_cast<int64_t>(x.size())) continue;
    const float* src = x.data() + (x.size() - n);  // ends with the non-finite row
    std::vector<uint8_t> ref(RowBytes(t, n)), fast(RowBytes(t, n), 0x55);
    QuantizeRow_ref(t, src, ref.data(), n);
    QuantizeRow(t, src, fast.data(), n);
    EXPECT_EQ(ref, fast) << TypeName(t) << " with " << blocks << " blocks";
  }
}

TEST_P(QuantsTest, RoundTripWithinTolerance) {
  const GgmlType t = GetParam();
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<float> x(4096), back(4096);
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> q(RowBytes(t, 4096));
  QuantizeRow(t, x.data(), q.data(), 4096);
  DequantizeRow(t, q.data(), back.data(), 4096);
  double e2 = 0, w2 = 0;
  for (int i = 0; i < 4096; ++i) {
    e2 += (x[i] - back[i]) * static_cast<double>(x[i] - back[i]);
    w2 += x[i] * static_cast<double>(x[i]);
  }
  EXPECT_LE(std::sqrt(e2 / w2), Tolerance(t)) << TypeName(t);
}

TEST_P(QuantsTest, RequantizingDequantizedDataIsStable) {
  // Quantize, dequantize, quantize again: a second pass must not drift far
  // (catches packing/unpacking mismatches between the two directions).
  const GgmlType t = GetParam();
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(1024), a(1024), b(1024);
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> q(RowBytes(t, 1024));
  QuantizeRow(t, x.data(), q.data(), 1024);
  DequantizeRow(t, q.data(), a.data(), 1024);
  QuantizeRow(t, a.data(), q.data(), 1024);
  DequantizeRow(t, q.data(), b.data(), 1024);
  double e2 = 0, w2 = 0;
  for (int i = 0; i < 1024; ++i) {
    e2 += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
    w2 += a[i] * static_cast<double>(a[i]);
  }
  EXPECT_LE(std::sqrt(e2 / w2), Tolerance(t)) << TypeName(t);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, QuantsTest, ::testing::ValuesIn(kTypes),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           std::string s = TypeName(info.param);
                           s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
                           return s;
                         });

TEST(QuantsTest, Q8_0KnownBlock) {
  // x = j - 16: amax 16, d = 16/127, q = roundf((j - 16) * 127 / 16).
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  BlockQ8_0 b;
  QuantizeRow(GgmlType::kQ8_0, x, &b, 32);
  EXPECT_EQ(b.d, 0x3008);  // fp16(16/127), round to nearest even
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[16], 0);
  EXPECT_EQ(b.qs[18], 16);   // 2 * 7.9375 = 15.875 -> 16
  EXPECT_EQ(b.qs[20], 32);   // 31.75 -> 32
  EXPECT_EQ(b.qs[31], 119);  // 15 * 7.9375 = 119.06 -> 119
}

TEST(QuantsTest, Q4_0UsesFirstLargestMagnitude) {
  // Equal magnitudes with opposite signs: the first one sets the scale sign.
  float x[32] = {};
  x[3] = -1.0f;
  x[7] = 1.0f;
  BlockQ4_0 ref, fast;
  QuantizeQ4_0_ref(x, &ref, 32);
  QuantizeRow(GgmlType::kQ4_0, x, &fast, 32);
  EXPECT_EQ(std::memcmp(&ref, &fast, sizeof(ref)), 0);
  float back[32];
  DequantizeRow(GgmlType::kQ4_0, &ref, back, 32);
  EXPECT_FLOAT_EQ(back[3], -1.0f);
}

}  // namespace
}  // namespace quantd::core::gguf
