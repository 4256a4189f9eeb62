// ggml block kernels: the fast kernels must write exactly the reference's
// bytes, and every type must round-trip within its named tolerance.
#include "quantd/core/gguf/quants.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "quantd/core/base/cpu_features.h"

namespace quantd::core::gguf {
namespace {

// The types of the kernel table, in table order.
std::vector<GgmlType> TableTypes() {
  std::vector<GgmlType> types;
  for (const GgmlKernels& k : AllGgmlKernels()) types.push_back(k.type);
  return types;
}

std::string CamelName(GgmlType t) {
  std::string s = TypeName(t);
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  return s;
}

// Relative RMS error bound for Gaussian data, per type.
double Tolerance(GgmlType t) {
  switch (t) {
    case GgmlType::kF32:
      return 0;
    case GgmlType::kF16:
      return 1e-3;
    case GgmlType::kBF16:
      return 5e-3;
    case GgmlType::kQ8_0:
      return 0.01;
    case GgmlType::kQ6_K:
      return 0.03;
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ5_K:
      return 0.06;
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ4_K:
    case GgmlType::kIQ4_NL:
    case GgmlType::kIQ4_XS:
      return 0.12;
    case GgmlType::kQ3_K:
      return 0.25;
    case GgmlType::kQ2_K:
      return 0.45;
    // Lattice types without an importance matrix (IQ1_S, IQ2_XXS, IQ2_XS:
    // uniform weights; the others llama.cpp's own).
    case GgmlType::kIQ3_S:
      return 0.2;
    case GgmlType::kIQ3_XXS:
      return 0.25;
    case GgmlType::kIQ2_S:
      return 0.3;
    case GgmlType::kIQ2_XS:
      return 0.35;
    case GgmlType::kIQ2_XXS:
      return 0.4;
    case GgmlType::kIQ1_S:
      return 0.55;
    case GgmlType::kIQ1_M:
      return 0.65;
    case GgmlType::kTQ1_0:  // ternary with the block's max as the scale:
    case GgmlType::kTQ2_0:  // most Gaussian values round to 0
      return 0.85;
    default:
      return 0;
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

TEST(GgmlKernelTableTest, OneEntryPerWrittenTypeWithItsGeometry) {
  const std::vector<GgmlType> want = {
      GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
      GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ2_K, GgmlType::kQ3_K,
      GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS,
      GgmlType::kTQ1_0, GgmlType::kTQ2_0,
      // Lattice-grid types (quants_iq*.cc).
      GgmlType::kIQ2_XXS, GgmlType::kIQ2_XS, GgmlType::kIQ2_S, GgmlType::kIQ3_XXS, GgmlType::kIQ3_S,
      GgmlType::kIQ1_S, GgmlType::kIQ1_M};
  std::vector<GgmlType> got = TableTypes();
  std::sort(got.begin(), got.end());
  std::vector<GgmlType> sorted_want = want;
  std::sort(sorted_want.begin(), sorted_want.end());
  EXPECT_EQ(got, sorted_want);
  for (const GgmlKernels& k : AllGgmlKernels()) {
    EXPECT_EQ(FindGgmlKernels(k.type), &k) << TypeName(k.type);
    EXPECT_NE(k.quantize_ref, nullptr) << TypeName(k.type);
    EXPECT_NE(k.dequantize, nullptr) << TypeName(k.type);
    EXPECT_TRUE(CanQuantize(k.type));
    EXPECT_EQ(QuantizeRowFor(k, CpuLevel::kScalar), k.quantize_ref);
  }
  EXPECT_EQ(FindGgmlKernels(GgmlType::kMXFP4), nullptr);
  EXPECT_FALSE(CanQuantize(GgmlType::kQ8_K));
  // One-pass checked kernels: the legacy types and Q6_K (AVX-512 too).
  for (const GgmlKernels& k : AllGgmlKernels()) {
    const bool one_pass = k.type == GgmlType::kQ8_0 || k.type == GgmlType::kQ4_0 ||
                          k.type == GgmlType::kQ4_1 || k.type == GgmlType::kQ5_0 ||
                          k.type == GgmlType::kQ5_1 || k.type == GgmlType::kQ6_K;
    EXPECT_EQ(k.checked_avx2 != nullptr, one_pass) << TypeName(k.type);
    EXPECT_EQ(k.checked_avx512 != nullptr, k.type == GgmlType::kQ6_K) << TypeName(k.type);
  }
  // Geometry comes from the block structs.
  EXPECT_EQ(TypeInfo(GgmlType::kQ4_K).type_size, static_cast<int64_t>(sizeof(BlockQ4_K)));
  EXPECT_EQ(TypeInfo(GgmlType::kQ4_K).block_size, BlockQ4_K::kElements);
  EXPECT_EQ(TypeInfo(GgmlType::kIQ4_XS).type_size, 136);
  EXPECT_EQ(TypeInfo(GgmlType::kF16).type_size, 2);
}

// Every variant of every table entry (each CPU level this machine has)
// writes the reference's bytes, on block counts that leave the vector
// kernels' multi-block passes partly filled (K-quants pair super-blocks,
// IQ4_NL runs 16 blocks per pass) and on data with every branch's case.
using VariantParam = std::tuple<GgmlType, CpuLevel, int64_t /*blocks, 0 = all data*/>;
class GgufKernelVariantTest : public ::testing::TestWithParam<VariantParam> {};

TEST_P(GgufKernelVariantTest, WritesReferenceBytes) {
  const auto [t, level, blocks] = GetParam();
  if (HostCpuLevel() < level) GTEST_SKIP() << "CPU lacks " << CpuLevelName(level);
  const GgmlKernels* k = FindGgmlKernels(t);
  ASSERT_NE(k, nullptr);
  for (uint32_t seed : {1u, 2u, 3u}) {
    const std::vector<float> data = TestData(seed);
    // blocks 0: all of the data.
    const int64_t n =
        blocks > 0 ? blocks * TypeInfo(t).block_size : static_cast<int64_t>(data.size());
    ASSERT_LE(n, static_cast<int64_t>(data.size()));
    for (bool tail : {false, true}) {  // tail: ends with the non-finite row
      const float* x = tail ? data.data() + (data.size() - n) : data.data();
      std::vector<uint8_t> ref(RowBytes(t, n)), variant(RowBytes(t, n), 0xAA),
          dispatched(RowBytes(t, n), 0x55);
      k->quantize_ref(x, ref.data(), n);
      QuantizeRowFor(*k, level)(x, variant.data(), n);
      {
        ScopedCpuLevelCap cap(level);
        QuantizeRow(t, x, dispatched.data(), n);
      }
      for (size_t i = 0; i < ref.size(); ++i) {
        ASSERT_EQ(ref[i], variant[i])
            << TypeName(t) << " " << CpuLevelName(level) << " blocks=" << blocks << " seed=" << seed
            << " tail=" << tail << " byte " << i << " (block " << i / TypeInfo(t).type_size << ")";
      }
      ASSERT_EQ(ref, dispatched) << TypeName(t) << " QuantizeRow at " << CpuLevelName(level)
                                 << " blocks=" << blocks << " seed=" << seed;
    }
  }
}

std::string VariantName(const ::testing::TestParamInfo<VariantParam>& info) {
  std::string level(CpuLevelName(std::get<1>(info.param)));
  level[0] = static_cast<char>(std::toupper(level[0]));
  const int64_t blocks = std::get<2>(info.param);
  return CamelName(std::get<0>(info.param)) + level +
         (blocks > 0 ? "Blocks" + std::to_string(blocks) : std::string("AllData"));
}

INSTANTIATE_TEST_SUITE_P(TableLevelsAndBlocks, GgufKernelVariantTest,
                         ::testing::Combine(::testing::ValuesIn(TableTypes()),
                                            ::testing::ValuesIn(kAllCpuLevels),
                                            ::testing::Values(int64_t{1}, int64_t{3}, int64_t{7},
                                                              int64_t{17}, int64_t{20},
                                                              int64_t{0})),
                         VariantName);

// QuantizeRowChecked (one pass for the legacy types at AVX2) against the
// separate steps it replaces: scan for NaN/Inf, QuantizeRow_ref, dequantize,
// AddQualitySums. Same bytes, the same sums to the last bit (the one-pass
// kernels keep the lanes and the order of the additions), and the same first
// non-finite index, at every CPU level and on spans cut short.
using CheckedParam = std::tuple<GgmlType, CpuLevel>;
class QuantizeRowCheckedTest : public ::testing::TestWithParam<CheckedParam> {};

TEST_P(QuantizeRowCheckedTest, EqualsScanQuantizeAndMeasure) {
  const auto [t, level] = GetParam();
  if (HostCpuLevel() < level) GTEST_SKIP() << "CPU lacks " << CpuLevelName(level);
  const int64_t block = TypeInfo(t).block_size;
  // Rows of TestData without its non-finite last row, repeated past two
  // quality spans, then cut to lengths that end inside a span.
  std::vector<float> data = TestData(7);
  data.resize(data.size() - 512);
  while (data.size() < static_cast<size_t>(2 * kQualitySpan + 1024)) {
    const size_t n = data.size();
    for (size_t i = 0; i < n; ++i) data.push_back(data[i] * 1.5f);
  }
  std::vector<float> scratch(kQualitySpan), back(data.size());
  ScopedCpuLevelCap cap(level);
  for (int64_t n : {block, 3 * block, kQualitySpan, 2 * kQualitySpan + 1024}) {
    n = n / block * block;
    std::vector<uint8_t> want(RowBytes(t, n)), got(RowBytes(t, n), 0xAA);
    QuantizeRow_ref(t, data.data(), want.data(), n);
    DequantizeRow(t, want.data(), back.data(), n);
    QualitySums want_sums;
    AddQualitySums(data.data(), back.data(), n, &want_sums);
    QualitySums sums;
    ASSERT_EQ(QuantizeRowChecked(t, data.data(), got.data(), n, &sums, scratch.data()), -1);
    ASSERT_EQ(want, got) << TypeName(t) << " n=" << n;
    EXPECT_EQ(sums.sum_w2, want_sums.sum_w2) << TypeName(t) << " n=" << n;
    EXPECT_EQ(sums.sum_e2, want_sums.sum_e2) << TypeName(t) << " n=" << n;
    EXPECT_EQ(sums.max_abs, want_sums.max_abs) << TypeName(t) << " n=" << n;
    EXPECT_GT(sums.sum_w2, 0);
    // Without sums: the same bytes.
    std::vector<uint8_t> plain(RowBytes(t, n), 0x55);
    ASSERT_EQ(QuantizeRowChecked(t, data.data(), plain.data(), n, nullptr, scratch.data()), -1);
    EXPECT_EQ(want, plain) << TypeName(t) << " n=" << n;
  }

  // Non-finite values: the index of the first one (a quantized type; the
  // float types take them as they are), with or without sums.
  const int64_t n = 2 * kQualitySpan;
  for (int64_t first : {int64_t{0}, int64_t{31}, int64_t{32}, kQualitySpan + 257, n - 1}) {
    for (float bad :
         {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
      std::vector<float> x(data.begin(), data.begin() + n);
      x[static_cast<size_t>(first)] = bad;
      if (first + 5 < n) x[static_cast<size_t>(first + 5)] = std::numeric_limits<float>::infinity();
      std::vector<uint8_t> out(RowBytes(t, n));
      QualitySums sums;
      const int64_t want = TypeInfo(t).quantized ? first : -1;
      EXPECT_EQ(QuantizeRowChecked(t, x.data(), out.data(), n, &sums, scratch.data()), want)
          << TypeName(t) << " first=" << first;
      EXPECT_EQ(QuantizeRowChecked(t, x.data(), out.data(), n, nullptr, scratch.data()), want)
          << TypeName(t) << " first=" << first;
    }
  }
}

std::string CheckedName(const ::testing::TestParamInfo<CheckedParam>& info) {
  std::string level(CpuLevelName(std::get<1>(info.param)));
  level[0] = static_cast<char>(std::toupper(level[0]));
  return CamelName(std::get<0>(info.param)) + level;
}

INSTANTIATE_TEST_SUITE_P(TableTypesAndLevels, QuantizeRowCheckedTest,
                         ::testing::Combine(::testing::Values(GgmlType::kQ8_0, GgmlType::kQ4_0,
                                                              GgmlType::kQ4_1, GgmlType::kQ5_0,
                                                              GgmlType::kQ5_1, GgmlType::kQ6_K,
                                                              GgmlType::kQ4_K, GgmlType::kF16),
                                            ::testing::ValuesIn(kAllCpuLevels)),
                         CheckedName);

// The fused sums equal the direct definition: sum x^2, sum (x - y)^2 and
// max |x - y| in double, within float rounding of the lane partials.
TEST(QuantizeRowCheckedTest, SumsMatchTheirDefinition) {
  std::vector<float> x = TestData(3);
  x.resize(x.size() - 512);  // without the non-finite row
  const int64_t n = static_cast<int64_t>(x.size()) / 32 * 32;
  for (GgmlType t :
       {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1}) {
    std::vector<uint8_t> out(RowBytes(t, n));
    std::vector<float> scratch(kQualitySpan), y(static_cast<size_t>(n));
    QualitySums sums;
    ASSERT_EQ(QuantizeRowChecked(t, x.data(), out.data(), n, &sums, scratch.data()), -1);
    DequantizeRow(t, out.data(), y.data(), n);
    double w2 = 0, e2 = 0, emax = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double w = x[static_cast<size_t>(i)], e = w - y[static_cast<size_t>(i)];
      w2 += w * w;
      e2 += e * e;
      emax = std::max(emax, std::fabs(e));
    }
    EXPECT_NEAR(sums.sum_w2, w2, 1e-5 * w2) << TypeName(t);
    EXPECT_NEAR(sums.sum_e2, e2, 1e-5 * e2) << TypeName(t);
    EXPECT_NEAR(sums.max_abs, emax, 1e-6 * emax) << TypeName(t);
  }
}

class QuantsTest : public ::testing::TestWithParam<GgmlType> {};

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

INSTANTIATE_TEST_SUITE_P(AllTypes, QuantsTest, ::testing::ValuesIn(TableTypes()),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return CamelName(info.param);
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

// Q8_0 rounds half away from zero (roundf): with amax 127 the scale is 1,
// so x itself is rounded. Halves of both signs, and the floats right below
// them (0.49999997 is where "add a half, truncate" goes wrong), at every
// CPU level, with and without the quality sums, as the reference. Tiny
// blocks: a subnormal scale, and one so small that 1 / d overflows (the
// reference's levels are then 0).
TEST(QuantsTest, Q8_0RoundsHalvesAwayFromZeroAtEveryLevel) {
  const float below = std::nextafter(0.5f, 0.0f);
  const std::vector<float> values = {127.0f,
                                     0.5f,
                                     -0.5f,
                                     1.5f,
                                     -1.5f,
                                     2.5f,
                                     -2.5f,
                                     126.5f,
                                     -126.5f,
                                     below,
                                     -below,
                                     0.0f,
                                     -0.0f,
                                     1.0f,
                                     std::nextafter(1.5f, 0.0f),
                                     -std::nextafter(2.5f, 0.0f),
                                     std::nextafter(0.5f, 1.0f),
                                     3.4999998f,
                                     -64.5f,
                                     63.5f};
  constexpr int64_t n = 96;
  std::vector<float> x(n);
  for (size_t j = 0; j < 32; ++j) x[j] = values[j % values.size()];
  for (size_t j = 32; j < 64; ++j) x[j] = (j == 40 ? 1e-36f : 3e-37f) * (j % 3 == 0 ? -1.0f : 1.0f);
  for (size_t j = 64; j < 96; ++j) x[j] = (j == 70 ? 1e-37f : 3e-38f) * (j % 3 == 0 ? -1.0f : 1.0f);
  std::vector<uint8_t> ref(RowBytes(GgmlType::kQ8_0, n));
  QuantizeRow_ref(GgmlType::kQ8_0, x.data(), ref.data(), n);
  const auto* block = reinterpret_cast<const BlockQ8_0*>(ref.data());
  EXPECT_EQ(block[0].qs[1], 1);    // 0.5 -> 1
  EXPECT_EQ(block[0].qs[2], -1);   // -0.5 -> -1
  EXPECT_EQ(block[0].qs[9], 0);    // 0.49999997 -> 0
  EXPECT_EQ(block[0].qs[7], 127);  // 126.5 -> 127
  EXPECT_EQ(block[1].qs[8], 127);  // d subnormal, 1 / d finite
  EXPECT_EQ(block[2].qs[6], 0);    // 1 / d overflows
  for (CpuLevel level : kAllCpuLevels) {
    if (HostCpuLevel() < level) continue;
    ScopedCpuLevelCap cap(level);
    std::vector<uint8_t> got(ref.size()), checked(ref.size());
    QuantizeRow(GgmlType::kQ8_0, x.data(), got.data(), n);
    EXPECT_EQ(got, ref) << CpuLevelName(level);
    std::vector<float> scratch(kQualitySpan), back(n);
    QualitySums sums, want;
    ASSERT_EQ(
        QuantizeRowChecked(GgmlType::kQ8_0, x.data(), checked.data(), n, &sums, scratch.data()),
        -1);
    EXPECT_EQ(checked, ref) << CpuLevelName(level);
    DequantizeRow(GgmlType::kQ8_0, ref.data(), back.data(), n);
    AddQualitySums(x.data(), back.data(), n, &want);
    EXPECT_EQ(sums.sum_e2, want.sum_e2) << CpuLevelName(level);
    EXPECT_EQ(sums.max_abs, want.max_abs) << CpuLevelName(level);
  }
}

// Legacy-type scales at the edges of fp16 (the one-pass kernels convert 8
// blocks' scales at once): scales that round to fp16 subnormals, to zero,
// and past 65504 (inf), next to ordinary blocks, at every CPU level and
// through QuantizeRowChecked, give the reference's bytes.
TEST(QuantsTest, LegacyScalesAtFp16Limits) {
  const std::vector<float> amax = {1.0f,  127e-6f,        127e-7f, 3e-3f, 1e-9f, 8e6f,
                                   -9e6f, 65504.0f * 127, 0.0f,    2.5f,  -6e-5f};
  constexpr int64_t kBlocks = 20;  // more than one group of 8, and a partial one
  std::vector<float> x(kBlocks * 32);
  for (int64_t b = 0; b < kBlocks; ++b) {
    const float m = amax[static_cast<size_t>(b) % amax.size()];
    for (int j = 0; j < 32; ++j) {
      x[static_cast<size_t>(b * 32 + j)] = j == 7 ? m : m * static_cast<float>(j - 16) / 23.0f;
    }
  }
  std::vector<float> scratch(kQualitySpan);
  for (GgmlType t :
       {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1}) {
    std::vector<uint8_t> ref(RowBytes(t, x.size()));
    QuantizeRow_ref(t, x.data(), ref.data(), static_cast<int64_t>(x.size()));
    for (CpuLevel level : kAllCpuLevels) {
      if (HostCpuLevel() < level) continue;
      ScopedCpuLevelCap cap(level);
      std::vector<uint8_t> got(ref.size()), checked(ref.size());
      QuantizeRow(t, x.data(), got.data(), static_cast<int64_t>(x.size()));
      EXPECT_EQ(got, ref) << TypeName(t) << " " << CpuLevelName(level);
      EXPECT_EQ(QuantizeRowChecked(t, x.data(), checked.data(), static_cast<int64_t>(x.size()),
                                   nullptr, scratch.data()),
                -1);
      EXPECT_EQ(checked, ref) << TypeName(t) << " " << CpuLevelName(level);
    }
  }
}

// Q4_1 / Q5_0 / Q5_1 blocks at the edges of their arithmetic: signed zeros
// (the reference's running min / max keeps the first of equal values, and
// the stored m keeps that zero's sign), constant blocks, ranges whose
// max - min overflows or whose d is so small that 1 / d is infinite, fp16
// overflow of d and m, denormals, ties of the largest magnitude with both
// signs, and Gaussian blocks at random scales. Every CPU level's QuantizeRow
// and QuantizeRowChecked (bytes, sums and the NaN-free result) must match
// the reference.
TEST(QuantsTest, LegacyAffineAndQ5_0EdgeBlocksMatchReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> decade(-30.0f, 30.0f);
  std::vector<float> x;
  auto block = [&](auto gen) {
    for (int j = 0; j < 32; ++j) x.push_back(gen(j));
  };
  block([](int j) { return j % 2 == 0 ? 0.0f : -0.0f; });
  block([](int j) { return j % 3 == 0 ? -0.0f : 0.0f; });
  block([](int j) { return j < 16 ? -0.0f : 1.0f; });
  block([](int j) { return j < 16 ? 0.0f : -1.0f; });
  block([](int) { return 0.75f; });
  block([](int) { return -3e38f; });
  block([](int j) { return j % 2 == 0 ? 3e38f : -3e38f; });
  block([](int j) { return j == 4 ? std::numeric_limits<float>::max() : 0.0f; });
  block([](int j) { return j == 9 ? -std::numeric_limits<float>::max() : 1.0f; });
  block([](int j) { return 1e-44f * static_cast<float>(j - 12); });
  block([](int j) { return 1e-39f * static_cast<float>(j % 5); });
  block([](int j) { return 7e4f * static_cast<float>(j - 15); });
  block([](int j) { return 2e9f * static_cast<float>(j % 7 - 3); });
  block([](int j) { return j == 3 ? -2.0f : (j == 20 ? 2.0f : 0.1f * static_cast<float>(j % 4)); });
  block([](int j) { return j == 3 ? 2.0f : (j == 20 ? -2.0f : 0.1f * static_cast<float>(j % 4)); });
  block([](int j) { return static_cast<float>(j) - 15.5f; });  // levels at half-integers
  for (int b = 0; b < 40; ++b) {
    const float m = std::pow(10.0f, decade(rng));
    const float shift = b % 3 == 0 ? 0.0f : m * nd(rng) * 4.0f;
    block([&](int) { return m * nd(rng) + shift; });
  }
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> scratch(kQualitySpan), back(x.size());
  auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
  for (GgmlType t : {GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1}) {
    const GgmlKernels* k = FindGgmlKernels(t);
    ASSERT_NE(k, nullptr);
    std::vector<uint8_t> ref(RowBytes(t, n));
    k->quantize_ref(x.data(), ref.data(), n);
    DequantizeRow(t, ref.data(), back.data(), n);
    QualitySums want;
    AddQualitySums(x.data(), back.data(), n, &want);
    for (CpuLevel level : kAllCpuLevels) {
      if (HostCpuLevel() < level) continue;
      std::vector<uint8_t> got(ref.size(), 0xAA), checked(ref.size(), 0x55);
      QuantizeRowFor(*k, level)(x.data(), got.data(), n);
      for (size_t i = 0; i < ref.size(); ++i) {
        ASSERT_EQ(ref[i], got[i]) << TypeName(t) << " " << CpuLevelName(level) << " byte " << i
                                  << " (block " << i / TypeInfo(t).type_size << ")";
      }
      ScopedCpuLevelCap cap(level);
      QualitySums sums;
      ASSERT_EQ(QuantizeRowChecked(t, x.data(), checked.data(), n, &sums, scratch.data()), -1);
      ASSERT_EQ(ref, checked) << TypeName(t) << " " << CpuLevelName(level);
      EXPECT_TRUE(same(sums.sum_w2, want.sum_w2)) << TypeName(t) << " " << CpuLevelName(level);
      EXPECT_TRUE(same(sums.sum_e2, want.sum_e2)) << TypeName(t) << " " << CpuLevelName(level);
      EXPECT_TRUE(same(sums.max_abs, want.max_abs)) << TypeName(t) << " " << CpuLevelName(level);
    }
  }
}

// F16 and BF16 storage at every CPU level against FloatToHalf /
// FloatToBfloat16 on a million random bit patterns (NaNs of every payload,
// infinities, subnormals among them) and the values at the edges: the
// largest finite F16 and the ties above it that round to inf, the
// subnormal and zero thresholds, signed zeros, BF16 ties to even.
TEST(QuantsTest, F16AndBF16MatchTheScalarConversionOnEveryBitPattern) {
  std::vector<float> x;
  for (uint32_t bits :
       {0x00000000u, 0x80000000u, 0x477fe000u, 0x477fefffu, 0x477ff000u, 0xc77ff000u,
        0x47800000u, 0x7f7fffffu, 0xff7fffffu, 0x7f800000u, 0xff800000u, 0x7f800001u,
        0x7fbfffffu, 0x7fc00000u, 0xffc12345u, 0x7fffffffu, 0x33000000u, 0x33000001u,
        0x32ffffffu, 0x33800000u, 0x38800000u, 0x387fffffu, 0x00000001u, 0x807fffffu,
        0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x3eaaaaabu}) {
    x.push_back(std::bit_cast<float>(bits));
  }
  std::mt19937 rng(9);
  while (x.size() < (1u << 20) + 7) x.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  const int64_t n = static_cast<int64_t>(x.size());  // not a multiple of 16: a scalar tail
  for (GgmlType t : {GgmlType::kF16, GgmlType::kBF16}) {
    const GgmlKernels* k = FindGgmlKernels(t);
    ASSERT_NE(k, nullptr);
    std::vector<uint8_t> ref(RowBytes(t, n));
    k->quantize_ref(x.data(), ref.data(), n);
    for (CpuLevel level : kAllCpuLevels) {
      if (HostCpuLevel() < level) continue;
      std::vector<uint8_t> got(ref.size(), 0xAA);
      QuantizeRowFor(*k, level)(x.data(), got.data(), n);
      for (size_t i = 0; i < ref.size(); i += 2) {
        ASSERT_EQ(ref[i] | ref[i + 1] << 8, got[i] | got[i + 1] << 8)
            << TypeName(t) << " " << CpuLevelName(level) << " input bits " << std::hex
            << std::bit_cast<uint32_t>(x[i / 2]);
      }
    }
  }
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

// Q6_K super-blocks built to reach every branch of the sub-block search and
// the finish: each of the 16 sub-blocks of a block gets its own pattern
// (all equal of either sign, zeros, one outlier, values below and just above
// the all-zero threshold, denormals, huge values (with `overflow`: values
// whose x^3 and fp16 d overflow, so the sums are NaN), ties of
// the largest magnitude with both signs, half-integer levels that round to
// even, a sub-block too small for its quantized scale to be nonzero, random
// magnitudes over ten decades). Every CPU level's quantizer and
// QuantizeRowChecked (bytes and sums) must match the reference.
std::vector<float> Q6KAdversarialBlocks(uint32_t seed, bool overflow) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> decade(-8.0f, 2.0f);
  std::uniform_int_distribution<int> pick(0, 15);
  auto sub_block = [&](int pattern, float* v) {
    const float m = std::pow(10.0f, decade(rng));
    for (int i = 0; i < 16; ++i) v[i] = m * nd(rng);
    switch (pattern) {
      case 0:  // all equal
        for (int i = 0; i < 16; ++i) v[i] = m;
        break;
      case 1:
        for (int i = 0; i < 16; ++i) v[i] = -m;
        break;
      case 2:  // zeros, one of them negative
        for (int i = 0; i < 16; ++i) v[i] = 0.0f;
        v[5] = -0.0f;
        break;
      case 3:  // one outlier
        for (int i = 0; i < 16; ++i) v[i] = 1e-3f * m * nd(rng);
        v[pick(rng)] = -m * 50.0f;
        break;
      case 4:  // below the all-zero threshold
        for (int i = 0; i < 16; ++i) v[i] = 5e-16f * nd(rng);
        break;
      case 5:  // just above it
        for (int i = 0; i < 16; ++i) v[i] = 2e-15f * nd(rng);
        v[3] = 1.5e-15f;
        break;
      case 6:  // denormals
        for (int i = 0; i < 16; ++i) v[i] = 1e-40f * static_cast<float>(i - 7);
        break;
      case 7:  // huge: the largest d fp16 holds, or x^3 and d overflow
        for (int i = 0; i < 16; ++i) {
          v[i] = (overflow ? 1e18f * nd(rng)
                           : (i % 2 == 0 ? 2e8f : -2e8f) * (0.5f + static_cast<float>(i) / 32.0f));
        }
        break;
      case 8: {  // largest magnitude tied with both signs, at random places
        const int a = pick(rng), b = (a + 1 + pick(rng) % 15) % 16;
        float amax = 0.0f;
        for (int i = 0; i < 16; ++i) amax = std::max(amax, std::fabs(v[i]));
        v[a] = (a < b ? 1.0f : -1.0f) * amax;
        v[b] = -v[a];
        break;
      }
      case 9:  // levels at half-integers: iscale * x = k + 1/2 for the first scale
        for (int i = 0; i < 16; ++i) v[i] = static_cast<float>(i) - 15.5f;
        v[0] = -32.0f;
        break;
      case 10:  // tiny next to the block's large sub-blocks: its 8-bit scale is 0
        for (int i = 0; i < 16; ++i) v[i] = 1e-7f * nd(rng);
        break;
      case 11:  // ties with the first value
        for (int i = 0; i < 16; ++i) v[i] = (i % 2 == 0 ? m : -m) * static_cast<float>(i % 3);
        break;
      default:  // Gaussian at a random scale
        break;
    }
  };
  std::vector<float> x;
  // Blocks of one pattern each (every sub-block alike), then mixed blocks.
  for (int pattern = 0; pattern < 13; ++pattern) {
    for (int j = 0; j < 16; ++j) {
      float v[16];
      sub_block(pattern, v);
      x.insert(x.end(), v, v + 16);
    }
  }
  for (int b = 0; b < 40; ++b) {
    for (int j = 0; j < 16; ++j) {
      float v[16];
      const bool loud = b >= 20 && j == 7;  // a loud sub-block sets the scales
      sub_block(b < 13 ? (j == 0 ? 12 : b) : (loud ? 12 : pick(rng) % 13), v);
      if (loud) {
        for (float& f : v) f *= 1e3f;
      }
      x.insert(x.end(), v, v + 16);
    }
  }
  // Sub-block scales of one magnitude with both signs: the first sets d's sign.
  for (int i = 0; i < 256; ++i)
    x.push_back(static_cast<uint32_t>(i / 16) % 2 == seed % 2 ? 0.5f : -0.5f);
  // A whole block so small that the fp16 d underflows to 0.
  for (int i = 0; i < 256; ++i) x.push_back(1e-9f * nd(rng));
  return x;
}

TEST(QuantsTest, Q6KAdversarialBlocksMatchReferenceAtEveryLevel) {
  const GgmlType t = GgmlType::kQ6_K;
  const GgmlKernels* k = FindGgmlKernels(t);
  ASSERT_NE(k, nullptr);
  std::vector<float> scratch(kQualitySpan);
  // Equal, or both NaN (the overflowing data's sums).
  auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
  for (uint32_t seed = 11; seed < 41; ++seed) {
    const bool overflow = seed % 5 == 0;
    const std::vector<float> x = Q6KAdversarialBlocks(seed, overflow);
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<uint8_t> ref(RowBytes(t, n));
    k->quantize_ref(x.data(), ref.data(), n);
    std::vector<float> back(x.size());
    DequantizeRow(t, ref.data(), back.data(), n);
    QualitySums want_sums;
    AddQualitySums(x.data(), back.data(), n, &want_sums);
    if (!overflow) {
      ASSERT_FALSE(std::isnan(want_sums.sum_e2)) << seed;
    }
    for (CpuLevel level : kAllCpuLevels) {
      if (HostCpuLevel() < level) continue;
      std::vector<uint8_t> got(RowBytes(t, n), 0xAA), checked(RowBytes(t, n), 0x55);
      QuantizeRowFor(*k, level)(x.data(), got.data(), n);
      for (size_t i = 0; i < ref.size(); ++i) {
        ASSERT_EQ(ref[i], got[i]) << CpuLevelName(level) << " seed=" << seed << " byte " << i
                                  << " (block " << i / sizeof(BlockQ6_K) << ")";
      }
      ScopedCpuLevelCap cap(level);
      QualitySums sums;
      ASSERT_EQ(QuantizeRowChecked(t, x.data(), checked.data(), n, &sums, scratch.data()), -1);
      ASSERT_EQ(ref, checked) << CpuLevelName(level) << " seed=" << seed;
      EXPECT_TRUE(same(sums.sum_w2, want_sums.sum_w2))
          << CpuLevelName(level) << " seed=" << seed << " " << sums.sum_w2;
      EXPECT_TRUE(same(sums.sum_e2, want_sums.sum_e2))
          << CpuLevelName(level) << " seed=" << seed << " " << sums.sum_e2;
      EXPECT_TRUE(same(sums.max_abs, want_sums.max_abs))
          << CpuLevelName(level) << " seed=" << seed << " " << sums.max_abs;
    }
  }
}

}  // namespace
}  // namespace quantd::core::gguf
