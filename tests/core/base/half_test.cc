#include "quantd/core/base/half.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/thread_pool.h"
#include "quantd/core/run_context.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace quantd::core {
namespace {

bool IsHalfNan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

// Every FP16 bit pattern survives half -> float -> half unchanged (NaNs stay NaN).
TEST(HalfTest, ExhaustiveRoundTripOfAllHalfPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = HalfToFloat(static_cast<uint16_t>(h));
    uint16_t back = FloatToHalf(f);
    if (IsHalfNan(static_cast<uint16_t>(h))) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_TRUE(IsHalfNan(back)) << std::hex << h;
    } else {
      EXPECT_EQ(back, h) << std::hex << h;
    }
  }
}

// HalfToFloat gives the exact value of every finite half.
TEST(HalfTest, ExhaustiveDecodeMatchesDefinition) {
  for (uint32_t h = 0; h < 65536; ++h) {
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 31) continue;
    double expect = e == 0 ? std::ldexp(static_cast<double>(m), -24)
                           : std::ldexp(1.0 + m / 1024.0, static_cast<int>(e) - 15);
    if (h & 0x8000) expect = -expect;
    EXPECT_EQ(static_cast<double>(HalfToFloat(static_cast<uint16_t>(h))), expect) << std::hex << h;
  }
}

// Midpoints between consecutive halves round to the even neighbour; points
// just off the midpoint round to the nearer one.
TEST(HalfTest, TiesRoundToEvenExhaustively) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {  // every pair of positive finite neighbours
    float lo = HalfToFloat(static_cast<uint16_t>(h));
    float hi = HalfToFloat(static_cast<uint16_t>(h + 1));
    float mid = static_cast<float>((static_cast<double>(lo) + hi) / 2);
    uint16_t even = (h % 2 == 0) ? h : h + 1;
    ASSERT_EQ(FloatToHalf(mid), even) << std::hex << h;
    ASSERT_EQ(FloatToHalf(-mid), even | 0x8000) << std::hex << h;
    ASSERT_EQ(FloatToHalf(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(FloatToHalf(std::nextafter(mid, 1e9f)), h + 1) << std::hex << h;
  }
}

TEST(HalfTest, OverflowUnderflowAndSpecials) {
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65519.99f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);  // tie above max rounds to inf
  EXPECT_EQ(FloatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(FloatToHalf(-INFINITY), 0xfc00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (zero)
  EXPECT_EQ(FloatToHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_TRUE(IsHalfNan(FloatToHalf(std::numeric_limits<float>::quiet_NaN())));
}

TEST(HalfTest, SpanClampsAndFlushesAndCounts) {
  std::vector<float> in = {1.0f, 70000.0f, -1e30f, INFINITY, 1e-9f, -1e-8f, 0.0f, 3e-8f, 65504.0f};
  std::vector<uint16_t> out(in.size());
  NarrowingStats stats;
  FloatToHalfSpan(in.data(), out.data(), in.size(), &stats);
  EXPECT_EQ(out[0], 0x3c00);
  EXPECT_EQ(out[1], 0x7bff);  // clamped
  EXPECT_EQ(out[2], 0xfbff);  // clamped, sign kept
  EXPECT_EQ(out[3], 0x7c00);  // inf kept
  EXPECT_EQ(out[4], 0x0000);  // flushed
  EXPECT_EQ(out[5], 0x8000);  // flushed, sign kept
  EXPECT_EQ(out[6], 0x0000);  // zero is not "flushed"
  EXPECT_EQ(out[7], 0x0001);  // 3e-8 rounds up to the smallest subnormal
  EXPECT_EQ(out[8], 0x7bff);  // exactly max: not clamped
  EXPECT_EQ(stats.clamped, 2u);
  EXPECT_EQ(stats.flushed, 2u);
}

// Every figure of two range scans is the same.
void ExpectSameRange(const FloatRangeStats& got, const FloatRangeStats& want,
                     const std::string& where) {
  EXPECT_EQ(got.non_finite, want.non_finite) << where;
  EXPECT_EQ(got.zeros, want.zeros) << where;
  EXPECT_EQ(got.flushed, want.flushed) << where;
  EXPECT_EQ(got.max_flushed, want.max_flushed) << where;
  EXPECT_EQ(got.min, want.min) << where;
  EXPECT_EQ(got.max, want.max) << where;
  EXPECT_EQ(got.max_abs, want.max_abs) << where;
}

// Every variant of the span converters (each CPU level this machine has)
// agrees with the reference bit for bit on random bit patterns (all classes:
// normals, subnormals, huge, NaN), on lengths that leave vector tails.
class HalfVariantTest : public ::testing::TestWithParam<std::tuple<CpuLevel, size_t>> {};

TEST_P(HalfVariantTest, SpansMatchReference) {
  const auto [level, n] = GetParam();
  if (HostCpuLevel() < level) GTEST_SKIP() << "CPU lacks " << CpuLevelName(level);
  ScopedCpuLevelCap cap(level);
  ASSERT_EQ(ActiveCpuLevel(), level);
  std::mt19937 gen(7 + static_cast<uint32_t>(n));
  std::vector<float> in(n);
  for (auto& f : in) {
    uint32_t bits = gen();
    std::memcpy(&f, &bits, 4);
  }
  std::vector<uint16_t> a(n), b(n);
  NarrowingStats sa, sb;
  FloatToHalfSpan(in.data(), a.data(), n, &sa);
  FloatToHalfSpan_ref(in.data(), b.data(), n, &sb);
  for (size_t i = 0; i < n; ++i) {
    if (IsHalfNan(b[i])) {
      ASSERT_TRUE(IsHalfNan(a[i])) << CpuLevelName(level) << " n=" << n << " index " << i;
    } else {
      ASSERT_EQ(a[i], b[i]) << CpuLevelName(level) << " n=" << n << " index " << i << " value "
                            << in[i];
    }
  }
  EXPECT_EQ(sa.clamped, sb.clamped);
  EXPECT_EQ(sa.flushed, sb.flushed);
  std::vector<float> fa(n), fb(n);
  HalfToFloatSpan(a.data(), fa.data(), n);
  HalfToFloatSpan_ref(a.data(), fb.data(), n);
  EXPECT_EQ(std::memcmp(fa.data(), fb.data(), n * 4), 0) << CpuLevelName(level) << " n=" << n;
  // The range scan, on the random patterns and on values at its edges.
  std::vector<float> edges(n);
  const float kEdge[] = {0.0f,
                         -0.0f,
                         0x1p-25f,
                         -0x1p-25f,
                         std::nextafter(0x1p-25f, 1.0f),
                         0x1p-149f,
                         65504.0f,
                         -std::numeric_limits<float>::max(),
                         std::numeric_limits<float>::infinity(),
                         std::nanf(""),
                         1.0f,
                         -3.0f};
  for (size_t i = 0; i < n; ++i) edges[i] = kEdge[gen() % std::size(kEdge)];
  for (const std::vector<float>* v : {&in, &edges}) {
    FloatRangeStats ra, rb;
    ScanFloatRange(v->data(), n, &ra);
    ScanFloatRange_ref(v->data(), n, &rb);
    ExpectSameRange(ra, rb, absl::StrCat(CpuLevelName(level), " n=", n));
  }
  // The 16-bit scans: the figures of the reference over the widened values,
  // on random bit patterns (NaNs, infinities, subnormals of both formats),
  // at an odd byte address too; and the bfloat16 widening itself.
  std::vector<uint16_t> bits(n);
  for (uint16_t& h : bits) h = static_cast<uint16_t>(gen());
  std::vector<unsigned char> odd(2 * n + 1);
  std::memcpy(odd.data() + 1, bits.data(), 2 * n);
  std::vector<float> bf(n), bf_ref(n), hf(n);
  Bfloat16ToFloatSpan(bits.data(), bf.data(), n);
  Bfloat16ToFloatSpan_ref(bits.data(), bf_ref.data(), n);
  EXPECT_EQ(std::memcmp(bf.data(), bf_ref.data(), n * 4), 0) << CpuLevelName(level) << " n=" << n;
  HalfToFloatSpan_ref(bits.data(), hf.data(), n);
  for (bool bf16 : {true, false}) {
    FloatRangeStats want;
    ScanFloatRange_ref(bf16 ? bf_ref.data() : hf.data(), n, &want);
    for (const void* p :
         {static_cast<const void*>(bits.data()), static_cast<const void*>(odd.data() + 1)}) {
      FloatRangeStats got;
      if (bf16) {
        ScanBfloat16Range(p, n, &got);
      } else {
        ScanHalfRange(p, n, &got);
      }
      ExpectSameRange(got, want, absl::StrCat(CpuLevelName(level), " n=", n, " bf16=", bf16));
    }
  }
}

// The range scan's definition on a hand-made span: extremes over the finite
// values, zeros of both signs, and the non-zero values FP16 rounds to zero
// (|x| <= 2^-25, the tie rounding to even zero).
TEST(HalfTest, ScanFloatRangeCountsWhatFp16WouldLose) {
  const float v[] = {1.0f,     -2.0f,         0.0f,
                     -0.0f,    std::nanf(""), -std::numeric_limits<float>::infinity(),
                     0x1p-25f, -0x1p-26f,     3e-8f};
  FloatRangeStats s;
  ScanFloatRange(v, std::size(v), &s);
  EXPECT_EQ(s.non_finite, 2u);
  EXPECT_EQ(s.zeros, 2u);
  EXPECT_EQ(s.flushed, 2u);  // 3e-8 > 2^-25 rounds to the smallest subnormal
  EXPECT_EQ(s.max_flushed, 0x1p-25f);
  EXPECT_EQ(s.min, -2.0f);
  EXPECT_EQ(s.max, 1.0f);
  EXPECT_EQ(s.max_abs, 2.0f);
  FloatRangeStats none;  // only non-finite values: no extremes
  const float bad[] = {std::nanf(""), std::numeric_limits<float>::infinity()};
  ScanFloatRange(bad, 2, &none);
  EXPECT_EQ(none.non_finite, 2u);
  EXPECT_GT(none.min, none.max);
}

// Narrowing in place, on 1 and 3 threads (more threads than a round's first
// chunks), for lengths around the chunk (65536 floats) and round edges:
// the halves are FloatToHalfSpan's, bit for bit, in the first 2n bytes, and
// the counts are its counts; the threaded span into a second buffer too.
TEST(HalfTest, FloatToHalfInPlaceNarrowsLikeTheSpan) {
  ThreadPool pool(2);
  std::mt19937 gen(11);
  for (size_t n : {size_t{0}, size_t{1}, size_t{9}, size_t{65536}, size_t{65537},
                   size_t{3} * 65536 + 17, size_t{9} * 65536 - 1}) {
    std::vector<float> in(n);
    for (float& f : in) {
      const uint32_t bits = gen();
      std::memcpy(&f, &bits, 4);
      if ((bits & 3) == 0) f = static_cast<float>(static_cast<int32_t>(bits)) * 1e-5f;
    }
    std::vector<uint16_t> want(n);
    NarrowingStats want_stats;
    FloatToHalfSpan_ref(in.data(), want.data(), n, &want_stats);
    for (int parallelism : {1, 3}) {
      RunContext ctx;
      ctx.pool = &pool;
      ctx.parallelism = parallelism;
      for (bool in_place : {true, false}) {
        std::vector<float> buf = in;
        std::vector<uint16_t> got(n);
        NarrowingStats stats;
        if (in_place) {
          FloatToHalfInPlace(buf.data(), n, ctx, &stats);
          std::memcpy(got.data(), buf.data(), 2 * n);
        } else {  // the threaded span into its own buffer
          FloatToHalfSpan(in.data(), got.data(), n, ctx, &stats);
        }
        for (size_t i = 0; i < n; ++i) {
          if (IsHalfNan(want[i])) {
            ASSERT_TRUE(IsHalfNan(got[i])) << n << " at " << i;
          } else {
            ASSERT_EQ(got[i], want[i])
                << n << " at " << i << " threads " << parallelism << " in place " << in_place;
          }
        }
        EXPECT_EQ(stats.clamped, want_stats.clamped) << n << " in place " << in_place;
        EXPECT_EQ(stats.flushed, want_stats.flushed) << n << " in place " << in_place;
      }
    }
  }
}

// The scan on a RunContext's threads: the figures of one serial pass,
// whatever the number of threads, over several pieces with the extremes and
// the odd values in different pieces.
TEST(HalfTest, ScanFloatRangeOnThreadsGivesTheSerialFigures) {
  const size_t n = (size_t{3} << 20) + 12345;  // four pieces, the last short
  std::vector<float> v(n);
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& x : v) x = normal(gen);
  v[17] = -0.0f;
  v[(size_t{1} << 20) + 5] = 1e-9f;                                   // flushed
  v[(size_t{2} << 20) + 9] = std::numeric_limits<float>::infinity();  // non-finite
  v[n - 1] = 4000.0f;                                                 // the max, last
  v[(size_t{2} << 20) - 1] = -5000.0f;                                // the min, a piece's end
  FloatRangeStats serial;
  ScanFloatRange(v.data(), n, &serial);
  ThreadPool pool(1);
  for (int parallelism : {1, 2}) {
    RunContext ctx;
    ctx.pool = &pool;
    ctx.parallelism = parallelism;
    FloatRangeStats s;
    ScanFloatRange(v.data(), n, ctx, &s);
    EXPECT_EQ(s.non_finite, serial.non_finite) << parallelism;
    EXPECT_EQ(s.zeros, serial.zeros);
    EXPECT_EQ(s.flushed, serial.flushed);
    EXPECT_EQ(s.max_flushed, serial.max_flushed);
    EXPECT_EQ(s.min, -5000.0f);
    EXPECT_EQ(s.max, 4000.0f);
    EXPECT_EQ(s.max_abs, 5000.0f);
  }
  EXPECT_EQ(serial.non_finite, 1u);
  EXPECT_GE(serial.flushed, 1u);
}

std::string HalfVariantName(const ::testing::TestParamInfo<std::tuple<CpuLevel, size_t>>& info) {
  std::string name(CpuLevelName(std::get<0>(info.param)));
  name[0] = static_cast<char>(std::toupper(name[0]));
  return name + "N" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(LevelsAndLengths, HalfVariantTest,
                         ::testing::Combine(::testing::ValuesIn(kAllCpuLevels),
                                            ::testing::Values(size_t{0}, size_t{1}, size_t{7},
                                                              size_t{8}, size_t{9}, size_t{1000},
                                                              size_t{100003})),
                         HalfVariantName);

#if defined(__x86_64__)
// The scalar reference is bit-exact with the F16C instruction itself on every
// value it does not clamp (|x| <= 65504 or inf/NaN).
__attribute__((target("f16c"))) uint16_t F16c(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, 0));
}

TEST(HalfTest, ReferenceMatchesF16cInstruction) {
  if (!HostCpuFeatures().f16c) GTEST_SKIP() << "CPU has no F16C";
  std::mt19937 gen(11);
  for (int i = 0; i < 2000000; ++i) {
    uint32_t bits = gen();
    float f;
    std::memcpy(&f, &bits, 4);
    uint16_t want = F16c(f);
    uint16_t got = FloatToHalf(f);
    if (IsHalfNan(want)) {
      ASSERT_TRUE(IsHalfNan(got));
      ASSERT_EQ(got, want) << std::hex << bits;  // same quiet-NaN payload
    } else {
      ASSERT_EQ(got, want) << std::hex << bits;
    }
  }
}
#endif

TEST(HalfTest, Bfloat16RoundTripAndRounding) {
  for (uint32_t b = 0; b < 65536; ++b) {
    float f = Bfloat16ToFloat(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToBfloat16(f), b);
  }
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
  EXPECT_EQ(FloatToBfloat16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(FloatToBfloat16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  std::vector<uint16_t> in = {0x3f80, 0xc000, 0x0001};
  std::vector<float> out(3);
  Bfloat16ToFloatSpan(in.data(), out.data(), 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
}

}  // namespace
}  // namespace quantd::core
