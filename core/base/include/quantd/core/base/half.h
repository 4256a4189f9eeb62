// IEEE 754 binary16 (FP16) and bfloat16 conversions.
//
// Scalar functions are the reference: FloatToHalf rounds to nearest, ties to
// even, bit-exact with x86 F16C `_cvtps_ph(x, 0)` and numpy's float16 cast for
// every non-NaN input (NaNs become quiet NaNs keeping the top payload bits, as
// F16C does). The span kernels are what passes call; they pick an AVX2/F16C
// path at run time (ActiveCpuLevel() >= kAvx2 and the CPU has F16C, see
// cpu_features.h) and produce identical bits to the `_ref` variants.
//
// Kernels never allocate, log or do I/O. Thread-safe (pure functions).
#ifndef QUANTD_CORE_BASE_HALF_H_
#define QUANTD_CORE_BASE_HALF_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace quantd::core {

struct RunContext;  // quantd/core/run_context.h

inline constexpr float kHalfMax = 65504.0f;
// Smallest positive FP16 subnormal is 2^-24; anything with magnitude <=
// kHalfFlushLimit (2^-25, the tie rounding to even zero) rounds to zero.
inline constexpr float kHalfMinSubnormal = 5.9604644775390625e-08f;
inline constexpr float kHalfFlushLimit = kHalfMinSubnormal * 0.5f;

// Round-to-nearest-even float -> FP16 bits. Overflow gives +-inf (no clamp).
inline uint16_t FloatToHalf(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  uint32_t h;
  if (x >= 0x47800000u) {  // >= 65536, inf or NaN
    if (x > 0x7f800000u) {
      h = 0x7e00u | ((x >> 13) & 0x3ffu);  // quiet NaN, payload kept
    } else {
      h = 0x7c00u;  // overflow -> inf
    }
  } else if (x < 0x38800000u) {  // result is subnormal or zero
    // Adding 0.5 (2^-1) aligns the 10 result mantissa bits at the bottom of the
    // float mantissa; the FPU's own round-to-nearest-even does the rounding.
    const float magic = std::bit_cast<float>(0x3f000000u);
    float sum = std::bit_cast<float>(x) + magic;
    h = std::bit_cast<uint32_t>(sum) - 0x3f000000u;
  } else {
    const uint32_t odd = (x >> 13) & 1u;
    x += 0xc8000fffu + odd;  // rebias exponent (-112 << 23) and round
    h = x >> 13;             // may carry into inf: correct for 65520..65535
  }
  return static_cast<uint16_t>(sign | h);
}

inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    // Subnormal or zero: value = mant * 2^-24, exact in float.
    float v = static_cast<float>(mant) * kHalfMinSubnormal;
    bits = sign | std::bit_cast<uint32_t>(v);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

// Round-to-nearest-even float -> bfloat16 bits; NaNs stay (quiet) NaNs.
inline uint16_t FloatToBfloat16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

inline float Bfloat16ToFloat(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

// What a narrowing conversion changed, for the report.
struct NarrowingStats {
  uint64_t clamped = 0;  // finite values beyond +-65504, set to +-65504
  uint64_t flushed = 0;  // non-zero values that became (signed) zero

  void Add(const NarrowingStats& other) {
    clamped += other.clamped;
    flushed += other.flushed;
  }
};

// FP32 -> FP16 for storage: finite values beyond +-65504 are clamped to
// +-65504 (instead of becoming inf), inf and NaN are kept, everything else is
// FloatToHalf. Adds to *stats. `in` and `out` must not overlap.
void FloatToHalfSpan(const float* in, uint16_t* out, size_t n, NarrowingStats* stats);
void FloatToHalfSpan_ref(const float* in, uint16_t* out, size_t n, NarrowingStats* stats);
// The same on ctx's threads, in fixed chunks (the counts do not depend on
// the number of threads).
void FloatToHalfSpan(const float* in, uint16_t* out, size_t n, const RunContext& ctx,
                     NarrowingStats* stats);

// FloatToHalfSpan of n floats at `data` into the first 2n bytes of the same
// buffer, on ctx's threads (no second buffer: a float32 weight narrowed for
// saving needs no fresh pages). Values in chunks that run in rounds: the
// halves of chunk c land where chunk c / 2's floats were, so a round starts
// once the chunks before it have been read. `data` must be 4-byte aligned.
void FloatToHalfInPlace(void* data, size_t n, const RunContext& ctx, NarrowingStats* stats);

void HalfToFloatSpan(const uint16_t* in, float* out, size_t n);
void HalfToFloatSpan_ref(const uint16_t* in, float* out, size_t n);

void Bfloat16ToFloatSpan(const uint16_t* in, float* out, size_t n);
void Bfloat16ToFloatSpan_ref(const uint16_t* in, float* out, size_t n);

// What FP16 would make of a span of FP32 values, gathered in one pass (the
// FP16 safety analysis reads every float constant of a model this way).
struct FloatRangeStats {
  uint64_t non_finite = 0;  // NaN, +-inf
  uint64_t zeros = 0;       // +0 and -0
  uint64_t flushed = 0;     // non-zero with |x| <= 2^-25: FP16 rounds them to zero
  float max_flushed = 0;    // the largest |x| among those
  float min = std::numeric_limits<float>::infinity();   // over the finite values (min > max:
  float max = -std::numeric_limits<float>::infinity();  // there are none)
  float max_abs = 0;                                    // over the finite values
};

// Adds n values to *stats. Every variant gives the same counts and values
// (a zero extreme may differ in sign).
void ScanFloatRange(const float* x, size_t n, FloatRangeStats* stats);
// The same over n bfloat16 / IEEE half values at any byte address, widened
// in registers (the figures of ScanFloatRange over the widened floats).
void ScanBfloat16Range(const void* x, size_t n, FloatRangeStats* stats);
void ScanHalfRange(const void* x, size_t n, FloatRangeStats* stats);
// The same on ctx's threads, in fixed 1 Mi-value pieces merged in order (the
// figures do not depend on the number of threads).
void ScanFloatRange(const float* x, size_t n, const RunContext& ctx, FloatRangeStats* stats);
// Folds the figures of another span's scan into *into (as if one pass had
// read both).
void MergeFloatRange(const FloatRangeStats& part, FloatRangeStats* into);
void ScanFloatRange_ref(const float* x, size_t n, FloatRangeStats* stats);

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_HALF_H_
