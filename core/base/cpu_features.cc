#include "quantd/core/base/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <ostream>

#include "absl/strings/match.h"

namespace quantd::core {
namespace {

CpuFeatures Probe() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.sse2 = __builtin_cpu_supports("sse2");
  f.avx2 = __builtin_cpu_supports("avx2");
  f.f16c = __builtin_cpu_supports("f16c");
#endif
  return f;
}

CpuLevel LevelOf(const CpuFeatures& f) {
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

// The innermost ScopedCpuLevelCap (kAvx2 = no cap).
std::atomic<int> g_cap{static_cast<int>(CpuLevel::kAvx2)};

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
    case CpuLevel::kScalar: return "scalar";
    case CpuLevel::kSse2: return "sse2";
    case CpuLevel::kAvx2: return "avx2";
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
