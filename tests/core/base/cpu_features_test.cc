#include "quantd/core/base/cpu_features.h"

#include <cstdlib>

#include "gtest/gtest.h"

namespace quantd::core {
namespace {

TEST(CpuFeaturesTest, HostLevelFollowsTheProbedFeatures) {
  const CpuFeatures& f = HostCpuFeatures();
  const CpuLevel expected = f.avx512 ? CpuLevel::kAvx512
                            : f.avx2 ? CpuLevel::kAvx2
                            : f.sse2 ? CpuLevel::kSse2
                                     : CpuLevel::kScalar;
  if (f.avx512) {
    EXPECT_TRUE(f.avx2);
  }
  EXPECT_EQ(HostCpuLevel(), expected);
#if defined(__x86_64__)
  EXPECT_TRUE(f.sse2) << "SSE2 is part of x86-64";
#endif
}

TEST(CpuFeaturesTest, ScopedCapLowersAndRestoresTheActiveLevel) {
  const CpuLevel before = ActiveCpuLevel();
  {
    ScopedCpuLevelCap scalar(CpuLevel::kScalar);
    EXPECT_EQ(ActiveCpuLevel(), CpuLevel::kScalar);
    {
      // An inner cap never raises the level.
      ScopedCpuLevelCap avx2(CpuLevel::kAvx2);
      EXPECT_EQ(ActiveCpuLevel(), CpuLevel::kScalar);
    }
    EXPECT_EQ(ActiveCpuLevel(), CpuLevel::kScalar);
  }
  EXPECT_EQ(ActiveCpuLevel(), before);
  if (HostCpuLevel() >= CpuLevel::kSse2) {
    ScopedCpuLevelCap sse2(CpuLevel::kSse2);
    EXPECT_EQ(ActiveCpuLevel(), CpuLevel::kSse2);
  }
}

// Run with QUANTD_CPU set (CTest does: CpuFeaturesTest.EnvironmentCapsTheLevel.*).
TEST(CpuFeaturesTest, EnvironmentCapsTheLevel) {
  const char* env = std::getenv("QUANTD_CPU");
  if (env == nullptr) GTEST_SKIP() << "QUANTD_CPU is not set";
  const std::optional<CpuLevel> wanted = ParseCpuLevel(env);
  ASSERT_TRUE(wanted.has_value()) << env;
  const CpuLevel expected = *wanted < HostCpuLevel() ? *wanted : HostCpuLevel();
  EXPECT_EQ(ActiveCpuLevel(), expected);
  // A cap at or above the environment's level does not raise it.
  ScopedCpuLevelCap avx512(CpuLevel::kAvx512);
  EXPECT_EQ(ActiveCpuLevel(), expected);
}

TEST(CpuFeaturesTest, LevelNamesRoundTrip) {
  for (CpuLevel level : kAllCpuLevels) {
    EXPECT_EQ(ParseCpuLevel(CpuLevelName(level)), level);
  }
  EXPECT_EQ(ParseCpuLevel("AVX2"), CpuLevel::kAvx2);
  EXPECT_EQ(ParseCpuLevel("AVX512"), CpuLevel::kAvx512);
  EXPECT_EQ(ParseCpuLevel("avx512f"), std::nullopt);
  EXPECT_EQ(ParseCpuLevel(""), std::nullopt);
}

}  // namespace
}  // namespace quantd::core
