// INT8 linear quantization: ORT's parameters, the per-column API, the scalar
// code kernel (the reference every variant matches), the kernel table and
// the column-range functions of the whole-matrix driver (int8_kernels.h).
#include "quantd/core/quant/int8_linear.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "int4_kernels.h"
#include "int8_kernels.h"
#include "quantd/core/base/finite.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/transpose.h"
#include "quantd/core/quant/bits_traits.h"
#include "quantd/core/quant/quality.h"

namespace quantd::core::quant {
namespace {

// ORT's weight ranges: QInt8 symmetric over [-127, 127] ([-64, 64] with
// reduce_range); QUInt8 over [0, 255] ([0, 127] with reduce_range).
constexpr int kInt8SymmetricMax = Int8Bits::kMax;          // 127
constexpr int kInt8ReducedMax = (Int8Bits::kMax + 1) / 2;  // 64
constexpr int kUint8ReducedMax = Uint8Bits::kMax / 2;      // 127

}  // namespace

Int8Params ComputeInt8Params(float min_value, float max_value, Int8Type type, bool reduce_range) {
  float rmin = std::min(min_value, 0.0f);
  float rmax = std::max(max_value, 0.0f);
  const bool symmetric = type == Int8Type::kInt8;
  double qmin, qmax;
  if (type == Int8Type::kInt8) {
    qmax = reduce_range ? kInt8ReducedMax : kInt8SymmetricMax;
    qmin = -qmax;
  } else {
    qmin = Uint8Bits::kMin;
    qmax = reduce_range ? kUint8ReducedMax : Uint8Bits::kMax;
  }
  if (symmetric) {
    float a = std::max(std::fabs(rmin), std::fabs(rmax));
    rmin = -a;
    rmax = a;
  }
  const double dr = static_cast<double>(rmax - rmin);  // float32 subtraction first
  const double s64 = dr / (qmax - qmin);
  Int8Params p;
  if (s64 < static_cast<double>(FLT_MIN)) return p;  // scale 1, zp 0
  if (symmetric) {
    p.zero_point = static_cast<int32_t>(std::nearbyint((qmin + qmax) / 2.0));
  } else {
    p.zero_point = static_cast<int32_t>(std::nearbyint(qmin - static_cast<double>(rmin) / s64));
  }
  p.scale = static_cast<float>(s64);
  return p;
}

void MinMax(const float* values, int64_t count, int64_t stride, float* min_value,
            float* max_value) {
  float mn = values[0], mx = values[0];
  for (int64_t i = 1; i < count; ++i) {
    float v = values[i * stride];
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  *min_value = mn;
  *max_value = mx;
}

void QuantizeInt8(const float* values, int64_t count, int64_t in_stride, const Int8Params& p,
                  Int8Type type, uint8_t* out, int64_t out_stride) {
  const int8::CodeRange r = int8::CodeRangeOf(type);
  const float zp = static_cast<float>(p.zero_point);
  if (in_stride == 1 && out_stride == 1) {
    // Contiguous: the code kernel of the active level, as one row.
    const int8::Int8Kernels& kernels = int8::Int8KernelsFor(ActiveCpuLevel());
    constexpr int64_t kChunk = int64_t{1} << 30;
    for (int64_t i = 0; i < count; i += kChunk) {
      const int width = static_cast<int>(std::min(kChunk, count - i));
      kernels.code_rows(values + i, 0, 1, width, &p.scale, &zp, 0, r, out + i, 0);
    }
    return;
  }
  for (int64_t i = 0; i < count; ++i) {
    out[i * out_stride] = int8::Int8Code(values[i * in_stride], p.scale, zp, r);
  }
}

namespace int8 {

void CodeRowsScalar(const float* src, int64_t ld, int rows, int width, const float* scale,
                    const float* zp, int step, const CodeRange& r, uint8_t* dst, int64_t ldd) {
  for (int i = 0; i < rows; ++i) {
    const float* v = src + i * ld;
    uint8_t* o = dst + i * ldd;
    for (int j = 0; j < width; ++j) o[j] = Int8Code(v[j], scale[j * step], zp[j * step], r);
  }
}

const Int8Kernels& Int8KernelsFor(CpuLevel level) {
  static constexpr Int8Kernels kScalar = {CpuLevel::kScalar, CodeRowsScalar};
#if defined(__x86_64__)
  static constexpr Int8Kernels kAvx2 = {CpuLevel::kAvx2, CodeRowsAvx2};
  if (level >= CpuLevel::kAvx2) return kAvx2;
#endif
  return kScalar;
}

namespace {

// Rows per tile of the code pass: the tile (kRowBlock x 64 floats, 16 KiB)
// stays in L1 from the code kernel to the quality sums, and its rows are few
// enough streams for the prefetchers.
constexpr int kRowBlock = 64;
constexpr int kTileCols = int4::kTileCols;
static_assert(kRowBlock <= int4::kMaxBlock, "TileStatsFn takes at most kMaxBlock rows");

// Widens `count` elements to float (FP16 rows of a range or tile).
inline void Widen(const Half* in, float* out, int64_t count) {
  HalfToFloatSpan(reinterpret_cast<const uint16_t*>(in), out, static_cast<size_t>(count));
}
inline void Widen(const float* in, float* out, int64_t count) { std::copy(in, in + count, out); }

}  // namespace

int64_t ColumnScratchFloats(int64_t k, int64_t width) {
  return std::max({width, k, int64_t{kRowBlock} * kTileCols});
}

template <typename T>
bool ColumnRanges(const Int8Kernels& kernels, const T* data, int64_t k, int64_t row_stride,
                  int64_t col_stride, int64_t c0, int64_t c1, float* mins, float* maxs,
                  float* scratch) {
  constexpr bool kFloat = std::is_same_v<T, float>;
  const int4::Int4Kernels& k4 = int4::Int4KernelsFor(kernels.level);
  const int width = static_cast<int>(c1 - c0);
  float* mn = mins + c0;
  float* mx = maxs + c0;
  bool nan = false;
  // Running min/max of `count` rows of `w` columns (ld floats apart).
  auto scan = [&](const float* rows, int64_t ld, int count, int w, float* lo, float* hi) {
    const int done = k4.min_max_rows(rows, ld, count, w, lo, hi, &nan);
    if (done < w)
      int4::MinMaxRowsScalar(rows + done, ld, count, w - done, lo + done, hi + done, &nan);
  };
  if (col_stride == 1) {
    // Whole rows of the range, one after the other: the input streams.
    // Starting from +-FLT_MAX selects what MinMax() selects from the first
    // value on (finite weights; a NaN or infinity refuses the tensor).
    std::fill(mn, mn + width, FLT_MAX);
    std::fill(mx, mx + width, -FLT_MAX);
    if constexpr (kFloat) {
      scan(data + c0, row_stride, static_cast<int>(k), width, mn, mx);
    } else {
      for (int64_t r = 0; r < k; ++r) {
        Widen(data + r * row_stride + c0, scratch, width);
        scan(scratch, 0, 1, width, mn, mx);
      }
    }
  } else {
    // Column by column: contiguous columns (row_stride 1) run as rows of
    // eight lanes, then the lanes are folded (a tie between +0 and -0 may
    // pick the other zero); others are gathered first.
    constexpr int kLanes = 8;
    const int64_t lane_rows = k / kLanes;
    for (int64_t c = c0; c < c1; ++c) {
      const T* src = data + c * col_stride;
      const float* col;
      if (kFloat && row_stride == 1) {
        col = reinterpret_cast<const float*>(src);
      } else {
        if constexpr (kFloat) {
          for (int64_t r = 0; r < k; ++r) scratch[r] = src[r * row_stride];
        } else {
          if (row_stride == 1) {
            Widen(src, scratch, k);
          } else {
            for (int64_t r = 0; r < k; ++r)
              scratch[r] = ElementTraits<T>::ToFloat(src[r * row_stride]);
          }
        }
        col = scratch;
      }
      float lo[kLanes], hi[kLanes];
      std::fill(lo, lo + kLanes, FLT_MAX);
      std::fill(hi, hi + kLanes, -FLT_MAX);
      scan(col, kLanes, static_cast<int>(lane_rows), kLanes, lo, hi);
      const int64_t tail = k - lane_rows * kLanes;
      if (tail > 0) {
        int4::MinMaxRowsScalar(col + lane_rows * kLanes, 0, 1, static_cast<int>(tail), lo, hi,
                               &nan);
      }
      float a = lo[0], b = hi[0];
      for (int l = 1; l < kLanes; ++l) {
        a = lo[l] < a ? lo[l] : a;
        b = hi[l] > b ? hi[l] : b;
      }
      mn[c - c0] = a;
      mx[c - c0] = b;
    }
  }
  return !nan && AllFiniteF32Rows(mn, 0, 1, width) && AllFiniteF32Rows(mx, 0, 1, width);
}

template <typename T>
void CodeColumns(const Int8Kernels& kernels, const T* data, int64_t k, int64_t row_stride,
                 int64_t col_stride, int64_t c0, int64_t c1, const float* scale, const float* zp,
                 Int8Type type, uint8_t* out, int64_t out_row_stride, int64_t out_col_stride,
                 Int4QualitySums* sums, float* scratch) {
  constexpr bool kFloat = std::is_same_v<T, float>;
  const int4::Int4Kernels& k4 = int4::Int4KernelsFor(kernels.level);
  const CodeRange cr = CodeRangeOf(type);
  alignas(64) uint8_t codes[kRowBlock * kTileCols];  // [row][col]
  alignas(64) float zq[kTileCols];                   // zero points as the sums read codes
  alignas(64) float st_w2[kTileCols], st_e2[kTileCols], st_max[kTileCols];
  const bool probe = sums != nullptr && sums->probe != nullptr;
  const int64_t range = c1 - c0;
  const int4::ProbeScratch probe_sums = int4::StartProbeSums(sums, range);
  float* const y = probe_sums.y;
  float* const yq = probe_sums.yq;
  double sum_w2 = 0, sum_e2 = 0;
  float max_abs = 0;
  // One tile: rows [r0, r0 + rows) of columns [t0, t0 + tn).
  auto tile_at = [&](int64_t r0, int rows, int64_t t0, int tn) {
    const float* tile;
    int64_t ld;
    if (kFloat && col_stride == 1) {
      tile = reinterpret_cast<const float*>(data) + r0 * row_stride + t0;
      ld = row_stride;
      // The tile's rows are `rows` streams row_stride apart: fetch the next
      // tile (read, keep in every cache level) while this one is coded.
      const int64_t next = t0 + kTileCols;
      if (next < c1) {
        const int pw = static_cast<int>(std::min<int64_t>(kTileCols, c1 - next));
        for (int i = 0; i < rows; ++i) {
          for (int j = 0; j < pw; j += 16) __builtin_prefetch(tile + kTileCols + i * ld + j, 0, 3);
        }
      }
    } else if (col_stride == 1) {
      for (int i = 0; i < rows; ++i) {
        Widen(data + (r0 + i) * row_stride + t0, scratch + i * kTileCols, tn);
      }
      tile = scratch;
      ld = kTileCols;
    } else if (kFloat && row_stride == 1) {
      // Transposed into [row][col]: each column's rows are contiguous.
      TransposeFloats(reinterpret_cast<const float*>(data) + t0 * col_stride + r0, tn, rows,
                      col_stride, scratch, kTileCols);
      tile = scratch;
      ld = kTileCols;
    } else {
      // Transposed into [row][col], converted from FP16 (or strided) rows.
      for (int j = 0; j < tn; ++j) {
        const T* src = data + (t0 + j) * col_stride + r0 * row_stride;
        for (int i = 0; i < rows; ++i) {
          scratch[i * kTileCols + j] = ElementTraits<T>::ToFloat(src[i * row_stride]);
        }
      }
      tile = scratch;
      ld = kTileCols;
    }
    uint8_t* dst = out + r0 * out_row_stride + t0 * out_col_stride;
    if (sums == nullptr && out_col_stride == 1) {
      kernels.code_rows(tile, ld, rows, tn, scale + t0, zp + t0, 1, cr, dst, out_row_stride);
      return;
    }
    kernels.code_rows(tile, ld, rows, tn, scale + t0, zp + t0, 1, cr, codes, kTileCols);
    if (out_col_stride == 1) {
      for (int i = 0; i < rows; ++i) {
        std::memcpy(dst + i * out_row_stride, codes + i * kTileCols, static_cast<size_t>(tn));
      }
    } else {
      for (int j = 0; j < tn; ++j) {
        uint8_t* col = dst + j * out_col_stride;
        for (int i = 0; i < rows; ++i) col[i * out_row_stride] = codes[i * kTileCols + j];
      }
    }
    if (sums == nullptr) return;
    // The sums read codes as int8 and dequantize (code - z) * s: uint8
    // codes and their zero points go in shifted by -128 (the differences,
    // small integers, are exact either way).
    if (cr.is_signed) {
      std::copy(zp + t0, zp + t0 + tn, zq);
    } else {
      for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < tn; ++j) codes[i * kTileCols + j] ^= 0x80;
      }
      for (int j = 0; j < tn; ++j) zq[j] = zp[t0 + j] - 128.0f;
    }
    int4::TileStatsArgs a;
    if (probe && ProbeGroupSampled(t0 / QualityAccumulator::kProbeGroup, sums->sample_threshold)) {
      a.probe = sums->probe + r0;
      a.ldp = k;
      a.probe_rows = sums->probe_rows;
      a.y = y + (t0 - c0);
      a.yq = yq + (t0 - c0);
      a.ldy = range;
    }
    k4.tile_stats(tile, ld, rows, tn, codes, scale + t0, zq, a, st_w2, st_e2, st_max);
    int4::AddTileStats(st_w2, st_e2, st_max, tn, &sum_w2, &sum_e2, &max_abs);
  };
  // Row blocks outside when rows are contiguous (the input streams row by
  // row), column tiles outside when columns are. Each y sum still adds its
  // column's rows in order.
  if (col_stride == 1) {
    for (int64_t r0 = 0; r0 < k; r0 += kRowBlock) {
      const int rows = static_cast<int>(std::min<int64_t>(kRowBlock, k - r0));
      for (int64_t t0 = c0; t0 < c1; t0 += kTileCols) {
        tile_at(r0, rows, t0, static_cast<int>(std::min<int64_t>(kTileCols, c1 - t0)));
      }
    }
  } else {
    for (int64_t t0 = c0; t0 < c1; t0 += kTileCols) {
      const int tn = static_cast<int>(std::min<int64_t>(kTileCols, c1 - t0));
      for (int64_t r0 = 0; r0 < k; r0 += kRowBlock) {
        tile_at(r0, static_cast<int>(std::min<int64_t>(kRowBlock, k - r0)), t0, tn);
      }
    }
  }
  if (sums != nullptr) {
    sums->sum_w2 += sum_w2;
    sums->sum_e2 += sum_e2;
    sums->max_abs = std::max(sums->max_abs, static_cast<double>(max_abs));
    if (probe) int4::AddProbeSums(y, yq, c0, c1, sums);
  }
}

template bool ColumnRanges<float>(const Int8Kernels&, const float*, int64_t, int64_t, int64_t,
                                  int64_t, int64_t, float*, float*, float*);
template bool ColumnRanges<Half>(const Int8Kernels&, const Half*, int64_t, int64_t, int64_t,
                                 int64_t, int64_t, float*, float*, float*);
template void CodeColumns<float>(const Int8Kernels&, const float*, int64_t, int64_t, int64_t,
                                 int64_t, int64_t, const float*, const float*, Int8Type, uint8_t*,
                                 int64_t, int64_t, Int4QualitySums*, float*);
template void CodeColumns<Half>(const Int8Kernels&, const Half*, int64_t, int64_t, int64_t, int64_t,
                                int64_t, const float*, const float*, Int8Type, uint8_t*, int64_t,
                                int64_t, Int4QualitySums*, float*);

}  // namespace int8

}  // namespace quantd::core::quant
