#include "quantd/core/base/cpu_features.h"

#include "gtest/gtest.h"

namespace quantd::core {
namespace {

TEST(CpuFeaturesTest, HostLevelFollowsTheProbedFeatures) {
  const CpuFeatures& f = HostCpuFeatures();
  const CpuLevel expected = f.avx2   ? CpuLevel::kAvx2
                            : f.sse2 ? CpuLevel::kSse2
                                     : CpuLevel::kScalar;
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

TEST(CpuFeaturesTest, LevelNamesRoundTrip) {
  for (CpuLevel level : kAllCpuLevels) {
    EXPECT_EQ(ParseCpuLevel(CpuLevelName(level)), level);
  }
  EXPECT_EQ(ParseCpuLevel("AVX2"), CpuLevel::kAvx2);
  EXPECT_EQ(ParseCpuLevel("avx512"), std::nullopt);
  EXPECT_EQ(ParseCpuLevel(""), std::nullopt);
}

}  // namespace
}  // namespace quantd::core
