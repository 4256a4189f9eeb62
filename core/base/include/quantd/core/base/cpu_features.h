// The one CPU-feature probe of the core: which instruction-set level the
// kernels may use, with a cap for tests and benchmarks.
//
// Kernels with SIMD variants (INT4 block-wise, GGUF block quantizers, the
// FP16 span converters) ask ActiveCpuLevel() once per call and pick the
// variant of that level or the best one below it. Every variant writes the
// same bytes as the scalar reference, so the level only changes speed; the
// cap exists so tests can run the SSE2 and scalar paths on an AVX2 machine
// and compare them with the reference.
//
// The level is the highest one the CPU supports, lowered by
//  * the environment variable QUANTD_CPU=scalar|sse2|avx2|avx512, read once at the
//    first call (unknown values are ignored; it never raises the level), and
//  * the innermost live ScopedCpuLevelCap (tests, benchmarks).
//
// Thread-safety: the probe and the environment are read once (thread-safe
// static initialisation); ActiveCpuLevel() is safe from any thread. A
// ScopedCpuLevelCap changes the level for the whole process: create it only
// while no other thread runs kernels whose variant matters to you.
#ifndef QUANTD_CORE_BASE_CPU_FEATURES_H_
#define QUANTD_CORE_BASE_CPU_FEATURES_H_

#include <iosfwd>
#include <optional>

#include "absl/strings/string_view.h"

namespace quantd::core {

// Instruction-set levels with kernel variants, in increasing order. kSse2 is
// the x86-64 baseline; kAvx2 requires AVX2 (F16C is reported separately);
// kAvx512 requires AVX2 and AVX-512 F, BW, DQ and VL with the OS saving the
// ZMM state (the x86-64-v4 set). A kernel without a variant of the active
// level uses the best one below it, so kAvx512 runs the AVX2 kernels except
// where an AVX-512 one exists.
enum class CpuLevel : int { kScalar = 0, kSse2 = 1, kAvx2 = 2, kAvx512 = 3 };

inline constexpr CpuLevel kAllCpuLevels[] = {CpuLevel::kScalar, CpuLevel::kSse2, CpuLevel::kAvx2,
                                             CpuLevel::kAvx512};

// What the hardware supports (no cap applied). Probed once.
struct CpuFeatures {
  bool sse2 = false;
  bool avx2 = false;
  bool f16c = false;
  bool avx512 = false;  // F, BW, DQ and VL, and the OS saves the ZMM state
};
const CpuFeatures& HostCpuFeatures();

// The highest level the hardware supports (no cap applied).
CpuLevel HostCpuLevel();

// The level kernels dispatch on: HostCpuLevel() capped by QUANTD_CPU and by
// the innermost live ScopedCpuLevelCap.
CpuLevel ActiveCpuLevel();

// "scalar", "sse2", "avx2", "avx512".
absl::string_view CpuLevelName(CpuLevel level);
// Inverse of CpuLevelName (case-insensitive); nullopt for anything else.
std::optional<CpuLevel> ParseCpuLevel(absl::string_view name);
// Writes CpuLevelName(level) (test failure messages, logs).
std::ostream& operator<<(std::ostream& os, CpuLevel level);

// Caps ActiveCpuLevel() at `cap` (it never raises it) until destroyed.
// Objects nest; destroy them in reverse order of creation. Not copyable.
class ScopedCpuLevelCap {
 public:
  explicit ScopedCpuLevelCap(CpuLevel cap);
  ~ScopedCpuLevelCap();
  ScopedCpuLevelCap(const ScopedCpuLevelCap&) = delete;
  ScopedCpuLevelCap& operator=(const ScopedCpuLevelCap&) = delete;

 private:
  int previous_;  // the cap in force before this object
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_CPU_FEATURES_H_
