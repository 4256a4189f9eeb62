#include "quantd/core/base/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <ostream>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "absl/strings/match.h"

namespace quantd::core {
namespace {

// CPUID and XGETBV directly (GCC and Clang both have <cpuid.h>; Clang's
// __builtin_cpu_supports knows no "f16c"). AVX2 and F16C are VEX-encoded:
// they also need the OS to save YMM state (OSXSAVE and XCR0 bits 1-2).
CpuFeatures Probe() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.sse2 = (d & bit_SSE2) != 0;
  bool ymm = false;
  bool zmm = false;
  if ((c & bit_OSXSAVE) != 0 && (c & bit_AVX) != 0) {
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    ymm = (xcr0_lo & 0x6) == 0x6;
    zmm = (xcr0_lo & 0xe6) == 0xe6;  // and the opmask and upper ZMM state
  }
  f.f16c = ymm && (c & bit_F16C) != 0;
  unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0;
  const bool leaf7 = __get_cpuid_count(7, 0, &a7, &b7, &c7, &d7);
  f.avx2 = ymm && leaf7 && (b7 & bit_AVX2) != 0;
  constexpr unsigned kAvx512Bits = bit_AVX512F | bit_AVX512BW | bit_AVX512DQ | bit_AVX512VL;
  f.avx512 = f.avx2 && zmm && (b7 & kAvx512Bits) == kAvx512Bits;
#endif
  return f;
}

CpuLevel LevelOf(const CpuFeatures& f) {
  if (f.avx512) return CpuLevel::kAvx512;
  if (f.avx2) return CpuLevel::kAvx2;
  if (f.sse2) return CpuLevel::kSse2;
  return CpuLevel::kScalar;
}

// HostCpuLevel() lowered by QUANTD_CPU, computed once.
CpuLevel ProcessCpuLevel() {
  static const CpuLevel level = [] {
    CpuLevel host = HostCpuLevel();
    const char* env = std::getenv("QUANTD_CPU");
    if (env == nullptr) return host;
    std::optional<CpuLevel> wanted = ParseCpuLevel(env);
    if (!wanted.has_value() || *wanted > host) return host;
    return *wanted;
  }();
  return level;
}

// The innermost ScopedCpuLevelCap (kAvx512, the highest level = no cap).
std::atomic<int> g_cap{static_cast<int>(CpuLevel::kAvx512)};

}  // namespace

const CpuFeatures& HostCpuFeatures() {
  static const CpuFeatures features = Probe();
  return features;
}

CpuLevel HostCpuLevel() { return LevelOf(HostCpuFeatures()); }

CpuLevel ActiveCpuLevel() {
  const CpuLevel process = ProcessCpuLevel();
  const auto cap = static_cast<CpuLevel>(g_cap.load(std::memory_order_relaxed));
  return cap < process ? cap : process;
}

absl::string_view CpuLevelName(CpuLevel level) {
  switch (level) {
    case CpuLevel::kScalar:
      return "scalar";
    case CpuLevel::kSse2:
      return "sse2";
    case CpuLevel::kAvx2:
      return "avx2";
    case CpuLevel::kAvx512:
      return "avx512";
  }
  return "scalar";
}

std::optional<CpuLevel> ParseCpuLevel(absl::string_view name) {
  for (CpuLevel level : kAllCpuLevels) {
    if (absl::EqualsIgnoreCase(name, CpuLevelName(level))) return level;
  }
  return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, CpuLevel level) { return os << CpuLevelName(level); }

ScopedCpuLevelCap::ScopedCpuLevelCap(CpuLevel cap)
    : previous_(g_cap.load(std::memory_order_relaxed)) {
  const int c = static_cast<int>(cap);
  g_cap.store(c < previous_ ? c : previous_, std::memory_order_relaxed);
}

ScopedCpuLevelCap::~ScopedCpuLevelCap() { g_cap.store(previous_, std::memory_order_relaxed); }

}  // namespace quantd::core
