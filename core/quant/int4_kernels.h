// INT4 block-wise quantization internals shared by the dispatching API
// (int4_blockwise.cc), the scalar reference (int4_blockwise_ref.cc), the
// search (int4_search.cc) and the tile kernels (int4_kernels_scalar.cc,
// int4_kernels_x86.cc). Private to core/quant; not installed.
//
// Per-value math is inline here so every user runs the same float
// operations. The tile kernels come in variants per CpuLevel; one table
// (Int4Kernels) binds a level to its variants, and every variant gives the
// scalar variant's bits.
//
// Kernels never allocate, log or do I/O. Pure functions; thread-safe.
#ifndef QUANTD_CORE_QUANT_INT4_KERNELS_H_
#define QUANTD_CORE_QUANT_INT4_KERNELS_H_

#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "quantd/core/base/cpu_features.h"
#include "quantd/core/quant/bits_traits.h"
#include "quantd/core/quant/int4_blockwise.h"

namespace quantd::core::quant::int4 {

inline constexpr int kTileCols = 64;   // columns per tile on the row-major fast path
inline constexpr int kMaxBlock = 256;  // largest supported block size

// MatMulNBits stores unsigned codes; QDQ int4 signed ones, uint4 unsigned.
inline constexpr int kNBitsSymmetricZeroPoint = Uint4Bits::kSymmetricZeroPoint;  // 8

// roundf (half away from zero) without a libm call, so loops vectorize.
// REQUIRES: |x| < 2^23 (callers clamp first; clamping does not change the
// final clamped code because rounding is monotonic).
inline float RoundHalfAway(float x) {
  float t = static_cast<float>(static_cast<int32_t>(x));  // trunc
  float d = x - t;                                        // exact
  t += d >= 0.5f ? 1.0f : 0.0f;
  t -= d <= -0.5f ? 1.0f : 0.0f;
  return t;
}

#if defined(__x86_64__)
// Four lanes of RoundHalfAway (SSE2, the x86-64 baseline), the same float
// operations.
inline __m128 RoundHalfAwaySse2(__m128 x) {
  __m128 t = _mm_cvtepi32_ps(_mm_cvttps_epi32(x));
  const __m128 d = _mm_sub_ps(x, t);
  const __m128 one = _mm_set1_ps(1.0f);
  t = _mm_add_ps(t, _mm_and_ps(_mm_cmpge_ps(d, _mm_set1_ps(0.5f)), one));
  return _mm_sub_ps(t, _mm_and_ps(_mm_cmple_ps(d, _mm_set1_ps(-0.5f)), one));
}
#endif

// Per-block quantization parameters in the form the code loops use.
struct BlockQ {
  float scale = 0;  // float(T(scale))
  float recip = 0;  // 1 / scale, or 0
  int zp = 0;       // 8 (MatMulNBits symmetric), 0 (QDQ int4) or 0..15
};

// Code range of a layout and symmetry: QDQ symmetric stores int4, the rest
// uint4.
inline int QMin(const Int4Options& o) {
  return (o.layout == Int4Layout::kQdq && o.symmetric) ? Int4Bits::kMin : Uint4Bits::kMin;
}
inline int QMax(const Int4Options& o) {
  return (o.layout == Int4Layout::kQdq && o.symmetric) ? Int4Bits::kMax : Uint4Bits::kMax;
}
inline int SymmetricZeroPoint(Int4Layout layout) {
  return layout == Int4Layout::kMatMulNBits ? kNBitsSymmetricZeroPoint : 0;
}

// Pre-rounding clamps. MatMulNBits: [0 - 1, 15 + 1] keeps every code that
// the final clamp to [0, 15] can tell apart. QDQ rounds before adding the
// zero point (0..15): +-(16 + 1) covers every zero point.
inline constexpr float kNBitsPreLo = static_cast<float>(Uint4Bits::kMin - 1);
inline constexpr float kNBitsPreHi = static_cast<float>(Uint4Bits::kMax + 1);
inline constexpr float kQdqPre = static_cast<float>(Uint4Bits::kLevels + 1);

// Code of one value. MatMulNBits: clamp(roundf(v*r + zp), 0, 15).
// QDQ: clamp(int(roundf(v*r)) + zp, qmin, qmax), qmin = -8 when signed.
template <Int4Layout L>
inline int Code(float v, float recip, float zpf, int zp, int qmin, int qmax) {
  if constexpr (L == Int4Layout::kMatMulNBits) {
    constexpr float kLo = static_cast<float>(Uint4Bits::kMin);
    constexpr float kHi = static_cast<float>(Uint4Bits::kMax);
    float x = v * recip + zpf;
    x = x < kNBitsPreLo ? kNBitsPreLo : (x > kNBitsPreHi ? kNBitsPreHi : x);
    float q = RoundHalfAway(x);
    q = q < kLo ? kLo : (q > kHi ? kHi : q);
    return static_cast<int>(q);
  } else {
    float y = v * recip;
    y = y < -kQdqPre ? -kQdqPre : (y > kQdqPre ? kQdqPre : y);
    int q = static_cast<int>(RoundHalfAway(y)) + zp;
    return q < qmin ? qmin : (q > qmax ? qmax : q);
  }
}

template <typename T>
BlockQ MakeBlockQ(T scale, int zp) {
  BlockQ q;
  q.scale = ElementTraits<T>::ToFloat(scale);
  q.recip = q.scale != 0.0f ? 1.0f / q.scale : 0.0f;
  q.zp = zp;
  return q;
}

// ORT's range2scale / range2scalezp (q4_dq.cpp), float32 math. Symmetric:
// m = the extreme of larger magnitude (a tie picks mn), scale = m / -8, so m
// maps to code -8. Asymmetric: the range widened to include 0 over 15 steps.
template <typename T>
BlockQ RtnParams(float mn, float mx, const Int4Options& o, T* scale) {
  if (o.symmetric) {
    float m = std::fabs(mx) > std::fabs(mn) ? mx : mn;
    *scale = ElementTraits<T>::FromFloat(-m / static_cast<float>(-Int4Bits::kMin));
    return MakeBlockQ(*scale, SymmetricZeroPoint(o.layout));
  }
  constexpr float kSteps = static_cast<float>(Uint4Bits::kMax - Uint4Bits::kMin);
  constexpr float kZpMax = static_cast<float>(Uint4Bits::kMax);
  mn = std::min(mn, 0.0f);
  mx = std::max(mx, 0.0f);
  float sf = (mx - mn) / kSteps;
  float zp_fp = mn;
  if (sf != 0.0f) zp_fp = 0.0f - mn / sf;
  int zp =
      zp_fp < 0.0f ? 0 : (zp_fp > kZpMax ? Uint4Bits::kMax : static_cast<int>(std::roundf(zp_fp)));
  *scale = ElementTraits<T>::FromFloat(sf);
  return MakeBlockQ(*scale, zp);
}

// ---- Tile kernels. A tile is `rows` rows of up to kTileCols contiguous
// floats (row stride `ld`); codes are [row][kTileCols] bytes.

// Code() in a form shared by every variant: the same float operations for
// both layouts, selected by zp_inside.
struct CodeParams {
  float lo, hi;    // clamp of the pre-rounding value (see Code())
  float qlo, qhi;  // code range
  bool zp_inside;  // MatMulNBits: roundf(v*r + zp); QDQ: roundf(v*r) + zp
};

inline CodeParams MakeCodeParams(Int4Layout layout, int qmin, int qmax) {
  if (layout == Int4Layout::kMatMulNBits) {
    return {kNBitsPreLo, kNBitsPreHi, static_cast<float>(Uint4Bits::kMin),
            static_cast<float>(Uint4Bits::kMax), true};
  }
  return {-kQdqPre, kQdqPre, static_cast<float>(qmin), static_cast<float>(qmax), false};
}

inline float CodeScalar(float v, float r, float z, const CodeParams& p) {
  float x = v * r;
  if (p.zp_inside) x = x + z;
  x = x < p.lo ? p.lo : (x > p.hi ? p.hi : x);
  float q = RoundHalfAway(x);
  if (!p.zp_inside) q = q + z;
  return q < p.qlo ? p.qlo : (q > p.qhi ? p.qhi : q);
}

// Running min/max of columns [0, width) over `rows` rows, row after row.
// Returns how many leading columns it did (a multiple of its vector width);
// the caller finishes the rest with the scalar variant. Sets *nan to true
// when one of those values is NaN (min/max skip NaN; an infinity shows in
// mn/mx), and leaves it alone otherwise.
using MinMaxRowsFn = int (*)(const float* src, int64_t ld, int rows, int width, float* mn,
                             float* mx, bool* nan);
// Codes of a full tile (kTileCols columns); r, z: per-column reciprocal and
// zero point, 32-byte aligned.
using CodeTileFn = void (*)(const float* src, int64_t ld, int rows, const float* r, const float* z,
                            const CodeParams& p, uint8_t* codes);
// Packs the codes of a full tile of one full block (bs rows, 16 <= bs <=
// kMaxBlock) into MatMulNBits bytes: column j goes to dst0 + j * col_stride.
using PackNBitsTileFn = void (*)(const uint8_t* codes, int bs, uint8_t* dst0, int64_t col_stride);
// RtnParams + MakeBlockQ of kTileCols symmetric MatMulNBits FP32 blocks.
using SymmetricParamsFn = void (*)(const float* mn, const float* mx, float* scale, float* recip,
                                   float* zpf);
// Squared error of a block of `rows` values under q, dequantized as ORT does.
// The double sum runs in one documented order for every variant: four
// partial sums, element i + l and i + 4 + l of each group of 8 into sum l,
// combined as (s0 + s1) + (s2 + s3), then the tail in order.
using BlockErrorFn = double (*)(const float* v, int rows, const BlockQ& q, const CodeParams& p);

// Quality sums of a tile (the fused report): `rows` rows of tn <= kTileCols
// values, their codes [row][kTileCols] (read as int8: QDQ int4 codes are
// signed, the others 0..15), per-column scale s and zero point z. Dequantized
// as DequantizeInt4 does, w' = (code - z) * s, e = w - w'. Overwrites
// w2[j] = sum w^2, e2[j] = sum e^2, emax[j] = max |e| (kTileCols floats, 0
// beyond tn). When probe is not null, also adds sum_i probe[p * ldp + i] * w
// to y[p * ldy + j] and the same of w' to yq[p * ldy + j], p < probe_rows.
// Figures, not output bytes: variants agree within float rounding.
struct TileStatsArgs {
  const float* probe = nullptr;  // the probe X's columns for this tile's rows
  int64_t ldp = 0;
  int probe_rows = 0;
  float* y = nullptr;  // the tile's first column in [probe_rows, ldy] sums
  float* yq = nullptr;
  int64_t ldy = 0;
};
using TileStatsFn = void (*)(const float* src, int64_t ld, int rows, int tn, const uint8_t* codes,
                             const float* s, const float* z, const TileStatsArgs& a, float* w2,
                             float* e2, float* emax);

// The error sums of TileStatsFn (no probe), vectorized over columns by the
// compiler at the caller's target. When wq is not null, also stores w' there
// ([rows][kTileCols]).
inline void TileErrorBody(const float* __restrict src, int64_t ld, int rows, int tn,
                          const uint8_t* __restrict codes, const float* __restrict s,
                          const float* __restrict z, float* __restrict w2, float* __restrict e2,
                          float* __restrict emax, float* __restrict wq) {
  for (int j = 0; j < kTileCols; ++j) {
    w2[j] = 0.0f;
    e2[j] = 0.0f;
    emax[j] = 0.0f;
  }
  for (int i = 0; i < rows; ++i) {
    const float* __restrict row = src + i * ld;
    const uint8_t* __restrict c = codes + i * kTileCols;
    for (int j = 0; j < tn; ++j) {
      const float w = row[j];
      const float q = (static_cast<float>(static_cast<int8_t>(c[j])) - z[j]) * s[j];
      const float e = w - q;
      w2[j] += w * w;
      e2[j] += e * e;
      const float ae = e < 0.0f ? -e : e;
      emax[j] = emax[j] > ae ? emax[j] : ae;
    }
    if (wq != nullptr) {
      for (int j = 0; j < tn; ++j) {
        wq[i * kTileCols + j] = (static_cast<float>(static_cast<int8_t>(c[j])) - z[j]) * s[j];
      }
    }
  }
}

// The portable TileStatsFn body (vectorized over columns by the compiler):
// the error sums of TileErrorBody, then the probe products over the tile's
// w' (each y sum still runs over the rows in order).
inline void TileStatsBody(const float* __restrict src, int64_t ld, int rows, int tn,
                          const uint8_t* __restrict codes, const float* __restrict s,
                          const float* __restrict z, const TileStatsArgs& a, float* __restrict w2,
                          float* __restrict e2, float* __restrict emax) {
  alignas(32) float wq[kMaxBlock * kTileCols];
  TileErrorBody(src, ld, rows, tn, codes, s, z, w2, e2, emax, a.probe != nullptr ? wq : nullptr);
  if (a.probe == nullptr) return;
  for (int p = 0; p < a.probe_rows; ++p) {
    float* __restrict yp = a.y + p * a.ldy;
    float* __restrict yqp = a.yq + p * a.ldy;
    for (int i = 0; i < rows; ++i) {
      const float x = a.probe[p * a.ldp + i];
      const float* __restrict row = src + i * ld;
      const float* __restrict q = wq + i * kTileCols;
      for (int j = 0; j < tn; ++j) {
        yp[j] += x * row[j];
        yqp[j] += x * q[j];
      }
    }
  }
}

// Adds one tile's TileStatsFn figures (its tn columns) to a range's running
// sums: the column sums in float, then that float to the double totals.
inline void AddTileStats(const float* w2, const float* e2, const float* emax, int tn,
                         double* sum_w2, double* sum_e2, float* max_abs) {
  float tw = 0, te = 0;
  for (int j = 0; j < tn; ++j) {
    tw += w2[j];
    te += e2[j];
    *max_abs = std::max(*max_abs, emax[j]);
  }
  *sum_w2 += tw;
  *sum_e2 += te;
}

// The X W and X W' accumulators (y, yq: [probe_rows, range] each, in that
// order in sums->scratch) of a range of `range` columns, zeroed; both null
// when there is no probe.
struct ProbeScratch {
  float* y = nullptr;
  float* yq = nullptr;
};
inline ProbeScratch StartProbeSums(Int4QualitySums* sums, int64_t range) {
  if (sums == nullptr || sums->probe == nullptr) return {};
  const int64_t each = sums->probe_rows * range;
  std::fill(sums->scratch, sums->scratch + 2 * each, 0.0f);
  return {sums->scratch, sums->scratch + each};
}

// Adds the probe sums of columns [n_begin, n_end) (y and yq: [probe_rows,
// n_end - n_begin], the X W and X W' sums of TileStatsFn) to sums->sum_y2 and
// sum_ye2, sampled 64-column groups only (the others' sums stayed 0).
// REQUIRES: n_begin is a multiple of QualityAccumulator::kProbeGroup.
void AddProbeSums(const float* y, const float* yq, int64_t n_begin, int64_t n_end,
                  Int4QualitySums* sums);

// ---- Row kernels: MatMulNBits RTN straight from K-contiguous rows. A
// weight stored by column (row_stride == 1: a checkpoint's [N, K] Linear
// weight) has each output column's K values contiguous, and MatMulNBits
// stores that column's blocks contiguously too, so the row path needs no
// transpose in and none out (the tiled path gathers a tile of columns into
// rows, then scatters the codes back). Every variant gives the tiled path's
// bytes; the quality figures agree within float rounding.

// Per-block min and max of a row of k = blocks * bs floats, as the tiled
// path finds them: the first of equal extremes in k order (so a block whose
// extreme is a signed zero keeps the sign the scalar scan keeps). Returns
// false when the row holds a NaN (an infinity shows in mn/mx).
using BlockMinMaxRowFn = bool (*)(const float* w, int64_t k, int bs, float* mn, float* mx);
// The same of a BF16 row at src (any address), which it also widens to
// wide[0, k); `next` (may be null) is the next row, fetched ahead into the
// caches while this one is read.
using WidenMinMaxRowFn = bool (*)(const void* src, const void* next, int64_t k, int bs, float* wide,
                                  float* mn, float* mx);
// The parameters of `blocks` symmetric MatMulNBits blocks of `bits` (4 or
// 8) with float scales: m = |mx| > |mn| ? mx : mn (a tie picks mn), scale[b]
// = -m / 2^(bits-1), recip[b] = scale ? 1 / scale : 0, zpf[b] = 2^(bits-1)
// (RtnParams + MakeBlockQ for 4 bits, Blockwise8's Block8Params for 8).
using SymmetricParamsRowFn = void (*)(const float* mn, const float* mx, int64_t blocks, int bits,
                                      float* scale, float* recip, float* zpf);
// The quality sums of rows: sum w^2 and sum (w - w')^2 (added to), max |w - w'|.
struct RowStats {
  double w2 = 0, e2 = 0;
  float emax = 0;
};
// Codes of a row under its blocks' recip and zpf: clamp(roundf(w * recip +
// zpf), 0, 2^bits - 1). 4 bits: packed two per byte (low nibble = even k)
// to out[0, k / 2); 8 bits: one per byte to out[0, k). When stats is not
// null adds the row's sums with w' = (code - zpf) * scale, and when wq is
// not null also stores w' there (k floats).
using CodeRowNBitsFn = void (*)(const float* w, int64_t k, int bs, int bits, const float* scale,
                                const float* recip, const float* zpf, uint8_t* out, RowStats* stats,
                                float* wq);
// The probe products of `rows` <= kProbeBatchRows rows: for row r and probe
// row p < probe_rows, y[p * ldy + r] = sum_i x[p * ldp + i] * w[r][i] and
// yq[p * ldy + r] the same of wq[r] (any order of summation). REQUIRES: k
// is a multiple of 16.
inline constexpr int kProbeBatchRows = 4;
using ProbeDotsRowsFn = void (*)(const float* x, int64_t ldp, int probe_rows, const float* const* w,
                                 const float* const* wq, int rows, int64_t k, float* y, float* yq,
                                 int64_t ldy);
struct NBitsRowKernels {
  BlockMinMaxRowFn block_min_max;
  WidenMinMaxRowFn widen_min_max;
  SymmetricParamsRowFn symmetric_params;
  CodeRowNBitsFn code;
  ProbeDotsRowsFn probe_dots;
};

// The tile kernels of one CpuLevel. Null entries have no variant at that
// level; the caller uses its scalar loop (or, for nbits_rows, the tiled
// path).
struct Int4Kernels {
  CpuLevel level;
  MinMaxRowsFn min_max_rows;
  CodeTileFn code_tile;
  PackNBitsTileFn pack_nbits_tile;     // may be null
  SymmetricParamsFn symmetric_params;  // may be null
  BlockErrorFn block_error;
  TileStatsFn tile_stats;
  const NBitsRowKernels* nbits_rows;  // may be null
};

// The kernels of `level`, or of the best level below it that has them.
const Int4Kernels& Int4KernelsFor(CpuLevel level);

// Scalar variants (int4_kernels_scalar.cc).
int MinMaxRowsScalar(const float* src, int64_t ld, int rows, int width, float* mn, float* mx,
                     bool* nan);
void CodeTileScalar(const float* src, int64_t ld, int rows, int tn, const float* r, const float* z,
                    const CodeParams& p, uint8_t* codes);
double BlockErrorScalar(const float* v, int rows, const BlockQ& q, const CodeParams& p);
void TileStatsScalar(const float* src, int64_t ld, int rows, int tn, const uint8_t* codes,
                     const float* s, const float* z, const TileStatsArgs& a, float* w2, float* e2,
                     float* emax);

#if defined(__x86_64__)
// x86-64 variants (int4_kernels_x86.cc). SSE2 is the x86-64 baseline; the
// AVX2 ones REQUIRE an AVX2 CPU.
int MinMaxRowsSse2(const float* src, int64_t ld, int rows, int width, float* mn, float* mx,
                   bool* nan);
void CodeTileSse2(const float* src, int64_t ld, int rows, const float* r, const float* z,
                  const CodeParams& p, uint8_t* codes);
void PackNBitsTileSse2(const uint8_t* codes, int bs, uint8_t* dst0, int64_t col_stride);
int MinMaxRowsAvx2(const float* src, int64_t ld, int rows, int width, float* mn, float* mx,
                   bool* nan);
void CodeTileAvx2(const float* src, int64_t ld, int rows, const float* r, const float* z,
                  const CodeParams& p, uint8_t* codes);
void SymmetricParamsAvx2(const float* mn, const float* mx, float* scale, float* recip, float* zpf);
double BlockErrorAvx2(const float* v, int rows, const BlockQ& q, const CodeParams& p);
void TileStatsAvx2(const float* src, int64_t ld, int rows, int tn, const uint8_t* codes,
                   const float* s, const float* z, const TileStatsArgs& a, float* w2, float* e2,
                   float* emax);
// The row kernels at CpuLevel::kAvx512 (nbits_rows_x86.cc); REQUIRE an
// AVX-512 (F, BW, DQ, VL) CPU.
extern const NBitsRowKernels kNBitsRowsAvx512;
#endif

}  // namespace quantd::core::quant::int4

#endif  // QUANTD_CORE_QUANT_INT4_KERNELS_H_
