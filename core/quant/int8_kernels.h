// INT8 linear quantization internals shared by the per-column API
// (int8_linear.cc), the row-major range functions the whole-matrix driver
// calls (weight_quantizer.cc) and the tile kernels (int8_kernels_x86.cc).
// Private to core/quant; not installed.
//
// The per-value math (Int8Code) is inline here so every variant runs the same
// float operations; the code kernels come in variants per CpuLevel, bound to
// a level by one table (Int8Kernels), and every variant writes the scalar
// variant's bytes. The quality sums reuse the INT4 tile kernels
// (int4_kernels.h: TileStatsFn, AddTileStats, AddProbeSums).
//
// Kernels never allocate, log or do I/O. Pure functions; thread-safe.
#ifndef QUANTD_CORE_QUANT_INT8_KERNELS_H_
#define QUANTD_CORE_QUANT_INT8_KERNELS_H_

#include <cstdint>

#include "quantd/core/base/cpu_features.h"
#include "quantd/core/quant/bits_traits.h"
#include "quantd/core/quant/int4_blockwise.h"
#include "quantd/core/quant/int8_linear.h"

namespace quantd::core::quant::int8 {

// Round half to even for |x| <= 2^22 (1.5 * 2^23 forces rounding at the
// units place in the current (nearest-even) rounding mode).
inline constexpr float kRoundMagic = 12582912.0f;
inline float RoundHalfEven(float x) { return (x + kRoundMagic) - kRoundMagic; }

// w / scale is clamped to +-this before rounding: beyond every code, and
// within RoundHalfEven's domain (weights are finite: NaN is refused first).
inline constexpr float kPreClamp = 512.0f;

// The code range of a type: [lo, hi] as floats.
struct CodeRange {
  float lo, hi;
  bool is_signed;  // int8 bytes, else uint8
};
inline CodeRange CodeRangeOf(Int8Type type) {
  if (type == Int8Type::kInt8) {
    return {static_cast<float>(Int8Bits::kMin), static_cast<float>(Int8Bits::kMax), true};
  }
  return {static_cast<float>(Uint8Bits::kMin), static_cast<float>(Uint8Bits::kMax), false};
}

// The byte of one value: clip(round_half_even(w / scale) + zp, lo, hi)
// (int8_linear.h), zp as a float.
inline uint8_t Int8Code(float w, float scale, float zp, const CodeRange& r) {
  float x = w / scale;
  x = x < -kPreClamp ? -kPreClamp : (x > kPreClamp ? kPreClamp : x);
  float q = RoundHalfEven(x) + zp;
  q = q < r.lo ? r.lo : (q > r.hi ? r.hi : q);
  const int v = static_cast<int>(q);
  return static_cast<uint8_t>(r.is_signed ? static_cast<int8_t>(v) : v);
}

// Codes of `rows` rows of `width` values (row stride `ld` floats) into dst
// (row stride `ldd` bytes). Column j uses scale[j * step] and zp[j * step]:
// step 1 is per column, step 0 one pair for every column.
using CodeRowsFn = void (*)(const float* src, int64_t ld, int rows, int width, const float* scale,
                            const float* zp, int step, const CodeRange& r, uint8_t* dst,
                            int64_t ldd);

// The kernels of one CpuLevel.
struct Int8Kernels {
  CpuLevel level;
  CodeRowsFn code_rows;
};

// The kernels of `level`, or of the best level below it that has them.
const Int8Kernels& Int8KernelsFor(CpuLevel level);

// Scalar variant (int8_linear.cc): the definition the others match.
void CodeRowsScalar(const float* src, int64_t ld, int rows, int width, const float* scale,
                    const float* zp, int step, const CodeRange& r, uint8_t* dst, int64_t ldd);

#if defined(__x86_64__)
// AVX2 variants (int8_kernels_x86.cc). REQUIRE an AVX2 CPU.
void CodeRowsAvx2(const float* src, int64_t ld, int rows, int width, const float* scale,
                  const float* zp, int step, const CodeRange& r, uint8_t* dst, int64_t ldd);
#endif

// ---- Column ranges of a weight matrix W[k, n] (the whole-matrix driver's
// work items): element (r, c) at data[r * row_stride + c * col_stride].
// Row-major W (col_stride 1, MatMul B) streams whole-row pieces; W stored
// [n, k] (row_stride 1: Gemm transB, Conv, embeddings) streams whole columns.

// Scratch floats ColumnRanges and CodeColumns need for a range of `width`
// columns of a k-row matrix.
int64_t ColumnScratchFloats(int64_t k, int64_t width);

// Min and max of each column c in [c0, c1) over all k rows into mins[c] and
// maxs[c]: MinMax()'s values, except that a zero's sign may differ (which
// ComputeInt8Params ignores). Returns false when one of those weights is NaN
// or infinite (mins/maxs are then unspecified).
template <typename T>
bool ColumnRanges(const Int8Kernels& kernels, const T* data, int64_t k, int64_t row_stride,
                  int64_t col_stride, int64_t c0, int64_t c1, float* mins, float* maxs,
                  float* scratch);

// Codes of columns [c0, c1) into out (element (r, c) at r * out_row_stride +
// c * out_col_stride): column c uses scale[c] and zp[c] (floats; per-tensor
// callers repeat one pair). When sums is not null, also adds the quality of
// the range from the code tiles, as the fused INT4 path does
// (Int4QualitySums: its probe, sample threshold and 2 * probe_rows * (c1 -
// c0) floats of scratch).
// REQUIRES: finite weights (ColumnRanges said so); c0 a multiple of 64.
template <typename T>
void CodeColumns(const Int8Kernels& kernels, const T* data, int64_t k, int64_t row_stride,
                 int64_t col_stride, int64_t c0, int64_t c1, const float* scale, const float* zp,
                 Int8Type type, uint8_t* out, int64_t out_row_stride, int64_t out_col_stride,
                 Int4QualitySums* sums, float* scratch);

}  // namespace quantd::core::quant::int8

#endif  // QUANTD_CORE_QUANT_INT8_KERNELS_H_
