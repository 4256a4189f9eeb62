// INT4 block-wise API: buffer sizes, the dispatch to the tile kernels of the
// active CpuLevel (int4_kernels.h) or the per-column path (search, strided
// weights), and the dequantizer. The scalar reference is
// int4_blockwise_ref.cc.
#include "quantd/core/quant/int4_blockwise.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <type_traits>

#include "int4_kernels.h"
#include "int4_search.h"
#include "nbits_rows.h"
#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/finite.h"
#include "quantd/core/base/transpose.h"
#include "quantd/core/quant/quality.h"

namespace quantd::core::quant {
namespace {

using int4::BlockQ;
using int4::Code;
using int4::CodeParams;
using int4::CodeTileScalar;
using int4::Int4Kernels;
using int4::Int4KernelsFor;
using int4::kMaxBlock;
using int4::kNBitsSymmetricZeroPoint;
using int4::kTileCols;
using int4::MakeBlockQ;
using int4::MakeCodeParams;
using int4::MinMaxRowsScalar;
using int4::QMax;
using int4::QMin;
using int4::RtnParams;
using int4::SearchParams;
using int4::TileStatsArgs;

// Stores one block's parameters.
template <typename T>
void StoreParams(const Int4Options& o, int64_t n_cols, int64_t blocks, int64_t col, int64_t b,
                 T scale, int zp, T* scales, uint8_t* zero_points) {
  if (o.layout == Int4Layout::kMatMulNBits) {
    scales[col * blocks + b] = scale;
    if (!o.symmetric) {
      uint8_t* byte = zero_points + col * ((blocks + 1) / 2) + b / 2;
      if ((b & 1) == 0) {
        // The unused high nibble is 8 until block b + 1 fills it.
        *byte = static_cast<uint8_t>(zp | (kNBitsSymmetricZeroPoint << 4));
      } else {
        *byte = static_cast<uint8_t>((*byte & 0x0f) | (zp << 4));
      }
    }
  } else {
    const int64_t f = o.n_major ? col * blocks + b : b * n_cols + col;
    scales[f] = scale;
    if (!o.symmetric) {
      uint8_t* byte = zero_points + f / 2;
      int sh = (f & 1) * 4;
      *byte = static_cast<uint8_t>((*byte & ~(0x0f << sh)) | ((zp & 0x0f) << sh));
    }
  }
}

inline void StoreQdqNibble(uint8_t* packed, int64_t f, int code) {
  uint8_t* byte = packed + f / 2;
  int sh = (f & 1) * 4;
  *byte = static_cast<uint8_t>((*byte & ~(0x0f << sh)) | ((code & 0x0f) << sh));
}

// Packs one MatMulNBits block of `rows` codes (stride `stride` in `codes`).
// `carry` is the high nibble MLAS leaves in an odd tail (see header).
inline void PackNBitsBlock(const uint8_t* codes, int64_t stride, int rows, int carry,
                           uint8_t* dst) {
  int i = 0;
  for (; i + 1 < rows; i += 2) {
    dst[i / 2] = static_cast<uint8_t>(codes[i * stride] | (codes[(i + 1) * stride] << 4));
  }
  if (i < rows) dst[i / 2] = static_cast<uint8_t>(codes[i * stride] | (carry << 4));
}

// Generic path: one column at a time, any strides, RTN or search (whose
// block error is the kernel table's).
template <typename T, Int4Layout L>
bool QuantizeGeneric(const Int4Kernels& kernels, const WeightView<T>& w, const Int4Options& o,
                     int64_t n_begin, int64_t n_end, uint8_t* packed, ScaleOf<T>* scales,
                     uint8_t* zero_points) {
  const int bs = o.block_size;
  const int64_t blocks = (w.k + bs - 1) / bs;
  const int qmin = QMin(o), qmax = QMax(o);
  float buf[kMaxBlock];
  uint8_t codes[kMaxBlock];
  for (int64_t n = n_begin; n < n_end; ++n) {
    int prev_last = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * bs;
      const int rows = static_cast<int>(std::min<int64_t>(bs, w.k - r0));
      const T* src = w.data + r0 * w.row_stride + n * w.col_stride;
      float mn = FLT_MAX, mx = -FLT_MAX;
      for (int i = 0; i < rows; ++i) {
        float v = ElementTraits<T>::ToFloat(src[i * w.row_stride]);
        buf[i] = v;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      if (!AllFiniteF32Rows(buf, 0, 1, rows)) return false;
      ScaleOf<T> scale;
      BlockQ q =
          o.algorithm == Int4Algorithm::kSearch
              ? SearchParams<ScaleOf<T>, L>(buf, rows, mn, mx, o, kernels.block_error, &scale)
              : RtnParams(mn, mx, o, &scale);
      StoreParams(o, w.n, blocks, n, b, scale, q.zp, scales, zero_points);
      const float zpf = static_cast<float>(q.zp);
      if constexpr (L == Int4Layout::kMatMulNBits) {
        for (int i = 0; i < rows; ++i) {
          codes[i] = static_cast<uint8_t>(Code<L>(buf[i], q.recip, zpf, q.zp, qmin, qmax));
        }
        int carry = rows >= 2 ? codes[rows - 2] : ((b & 1) ? prev_last : 0);
        PackNBitsBlock(codes, 1, rows, carry, packed + (n * blocks + b) * (bs / 2));
        prev_last = codes[rows - 1];
      } else if (o.n_major) {  // this column's codes are contiguous
        for (int i = 0; i < rows; ++i) {
          StoreQdqNibble(packed, n * w.k + r0 + i, Code<L>(buf[i], q.recip, zpf, q.zp, qmin, qmax));
        }
      } else {
        for (int i = 0; i < rows; ++i) {
          int c = Code<L>(buf[i], q.recip, zpf, q.zp, qmin, qmax);
          StoreQdqNibble(packed, (r0 + i) * w.n + n, c);
        }
      }
    }
  }
  return true;
}

// Code MLAS left in its scratch for row K-2 (the odd-K carry) when row K-1
// opens block b (odd) alone: block b-1's parameters are already stored.
template <typename T, Int4Layout L>
int CarryFromPreviousBlock(const WeightView<T>& w, const Int4Options& o, int64_t col,
                           int64_t blocks, const ScaleOf<T>* scales, const uint8_t* zero_points) {
  const int64_t b = blocks - 2;
  BlockQ q = MakeBlockQ(scales[col * blocks + b], kNBitsSymmetricZeroPoint);
  if (!o.symmetric) q.zp = (zero_points[col * ((blocks + 1) / 2) + b / 2] >> ((b & 1) * 4)) & 0xf;
  const float v = ElementTraits<T>::ToFloat(w.data[(w.k - 2) * w.row_stride + col * w.col_stride]);
  return Code<L>(v, q.recip, static_cast<float>(q.zp), q.zp, QMin(o), QMax(o));
}

// Fast RTN path: blocks of rows in the outer loop, tiles of columns inside,
// and the inner loops run over contiguous columns (vectorized). Row-major
// weights (col_stride == 1) stream row by row; weights stored by column
// (row_stride == 1: an embedding, a transposed B) are gathered tile by tile
// into the row-major form first. `kernels` are the tile kernels of the
// active CpuLevel.
template <typename T, Int4Layout L>
bool QuantizeTiledRtn(const Int4Kernels& kernels, const WeightView<T>& w, const Int4Options& o,
                      int64_t n_begin, int64_t n_end, uint8_t* packed, ScaleOf<T>* scales,
                      uint8_t* zero_points, Int4QualitySums* sums) {
  const int bs = o.block_size;
  const int64_t blocks = (w.k + bs - 1) / bs;
  const int qmin = QMin(o), qmax = QMax(o);
  const CodeParams cp = MakeCodeParams(L, qmin, qmax);
  // Rows are scanned in super-tiles of kSuper columns. FP32: one tile, so the
  // min/max pass brings the tile into L1 and the code pass reads it from
  // there (a whole-row-width super-tile streams better but re-reads 512 KiB
  // from L2); the next tile is prefetched by hand. FP16 rows are widened tile
  // by tile into `wide` first.
  constexpr bool kFloat = std::is_same_v<T, float>;
  constexpr int kSuper = kTileCols;
  constexpr int kPrefetchTiles = 1;
  const bool by_column = w.col_stride != 1;  // then row_stride == 1
  alignas(64) float mn[kSuper], mx[kSuper];
  alignas(64) float recip[kTileCols], zpf[kTileCols];
  alignas(64) uint8_t codes[kMaxBlock * kTileCols];  // [row][col]
  alignas(64) float wide[kMaxBlock * kTileCols];     // a gathered or widened tile
  // Fused quality: per-tile column sums, folded into double per tile.
  alignas(64) float scale_f[kTileCols];
  alignas(64) float st_w2[kTileCols], st_e2[kTileCols], st_max[kTileCols];
  const bool probe = sums != nullptr && sums->probe != nullptr;
  const int64_t range = n_end - n_begin;
  const int4::ProbeScratch probe_sums = int4::StartProbeSums(sums, range);
  float* const y = probe_sums.y;
  float* const yq = probe_sums.yq;
  double sum_w2 = 0, sum_e2 = 0;
  float max_abs = 0;
  // One block of rows of one super-tile of columns; false: a NaN or Inf.
  auto super_tile = [&](int64_t b, int64_t s0) {
    const int64_t r0 = b * bs;
    const int rows = static_cast<int>(std::min<int64_t>(bs, w.k - r0));
    const int sw = static_cast<int>(std::min<int64_t>(kSuper, n_end - s0));
    const float* base = wide;
    int64_t ld = kTileCols;
    if (by_column) {
      if constexpr (kFloat) {
        TransposeFloats(w.data + s0 * w.col_stride + r0, sw, rows, w.col_stride, wide, kTileCols);
      } else if constexpr (std::is_same_v<T, Bfloat16>) {
        TransposeBfloat16ToFloats(w.data + s0 * w.col_stride + r0, sw, rows, w.col_stride, wide,
                                  kTileCols);
      } else {
        for (int j = 0; j < sw; ++j) {
          const T* src = w.data + (s0 + j) * w.col_stride + r0;
          for (int i = 0; i < rows; ++i) {
            wide[i * kTileCols + j] = ElementTraits<T>::ToFloat(src[i]);
          }
        }
      }
    } else if constexpr (kFloat) {
      base = w.data + r0 * w.row_stride + s0;
      ld = w.row_stride;
    } else {
      for (int i = 0; i < rows; ++i) {
        const T* src = w.data + (r0 + i) * w.row_stride + s0;
        for (int j = 0; j < sw; ++j) wide[i * kTileCols + j] = ElementTraits<T>::ToFloat(src[j]);
      }
    }
    for (int j = 0; j < sw; ++j) {
      mn[j] = FLT_MAX;
      mx[j] = -FLT_MAX;
    }
    if (kFloat && !by_column) {
      // The tile's rows are kSuper-column pieces of `rows` streams 4 * ld
      // bytes apart: too many for the hardware prefetcher, so fetch the
      // tile kPrefetchTiles ahead (within this block of rows) ourselves
      // (read, keep in every cache level: prefetcht0 on x86).
      const int64_t ahead = s0 + kPrefetchTiles * kSuper;
      if (ahead < n_end) {
        const int pw = static_cast<int>(std::min<int64_t>(kSuper, n_end - ahead));
        const float* pf = base + kPrefetchTiles * kSuper;
        for (int i = 0; i < rows; ++i) {
          for (int j = 0; j < pw; j += 16) __builtin_prefetch(pf + i * ld + j, 0, 3);
        }
      }
    }
    bool nan = false;
    const int done = kernels.min_max_rows(base, ld, rows, sw, mn, mx, &nan);
    if (done < sw) {
      MinMaxRowsScalar(base + done, ld, rows, sw - done, mn + done, mx + done, &nan);
    }
    // NaN/Inf: refused before any code is computed (an infinity shows in
    // the range of its column).
    if (nan || !AllFiniteF32Rows(mn, 0, 1, sw) || !AllFiniteF32Rows(mx, 0, 1, sw)) return false;
    for (int64_t c0 = s0; c0 < s0 + sw; c0 += kTileCols) {
      const int tn = static_cast<int>(std::min<int64_t>(kTileCols, s0 + sw - c0));
      const float* tile = base + (c0 - s0);
      bool params_done = false;
      if constexpr (kFloat && L == Int4Layout::kMatMulNBits) {
        if (o.symmetric && tn == kTileCols && kernels.symmetric_params != nullptr) {
          alignas(32) float sc[kTileCols];
          kernels.symmetric_params(mn + (c0 - s0), mx + (c0 - s0), sc, recip, zpf);
          for (int j = 0; j < kTileCols; ++j) scales[(c0 + j) * blocks + b] = sc[j];
          if (sums != nullptr) std::copy(sc, sc + kTileCols, scale_f);
          params_done = true;
        }
      }
      for (int j = 0; !params_done && j < tn; ++j) {
        ScaleOf<T> scale;
        BlockQ q = RtnParams(mn[c0 - s0 + j], mx[c0 - s0 + j], o, &scale);
        StoreParams(o, w.n, blocks, c0 + j, b, scale, q.zp, scales, zero_points);
        recip[j] = q.recip;
        zpf[j] = static_cast<float>(q.zp);
        scale_f[j] = q.scale;
      }
      if (tn == kTileCols) {
        kernels.code_tile(tile, ld, rows, recip, zpf, cp, codes);
      } else {
        CodeTileScalar(tile, ld, rows, tn, recip, zpf, cp, codes);
      }
      if (sums != nullptr) {
        TileStatsArgs a;
        if (probe &&
            ProbeGroupSampled(c0 / QualityAccumulator::kProbeGroup, sums->sample_threshold)) {
          a.probe = sums->probe + r0;
          a.ldp = w.k;
          a.probe_rows = sums->probe_rows;
          a.y = y + (c0 - n_begin);
          a.yq = yq + (c0 - n_begin);
          a.ldy = range;
        }
        kernels.tile_stats(tile, ld, rows, tn, codes, scale_f, zpf, a, st_w2, st_e2, st_max);
        int4::AddTileStats(st_w2, st_e2, st_max, tn, &sum_w2, &sum_e2, &max_abs);
      }
      if constexpr (L == Int4Layout::kMatMulNBits) {
        if (tn == kTileCols && rows == bs && kernels.pack_nbits_tile != nullptr) {
          kernels.pack_nbits_tile(codes, bs, packed + (c0 * blocks + b) * (bs / 2),
                                  blocks * (bs / 2));
          continue;
        }
      }
      if constexpr (L == Int4Layout::kMatMulNBits) {
        for (int j = 0; j < tn; ++j) {
          uint8_t* dst = packed + ((c0 + j) * blocks + b) * (bs / 2);
          const uint8_t* c = codes + j;
          int i = 0;
          for (; i + 1 < rows; i += 2) {
            dst[i / 2] = static_cast<uint8_t>(c[i * kTileCols] | (c[(i + 1) * kTileCols] << 4));
          }
          if (i < rows) {
            int carry =
                rows >= 2 ? c[(rows - 2) * kTileCols]
                : (b & 1) ? CarryFromPreviousBlock<T, L>(w, o, c0 + j, blocks, scales, zero_points)
                          : 0;
            dst[i / 2] = static_cast<uint8_t>(c[i * kTileCols] | (carry << 4));
          }
        }
      } else if (o.n_major) {  // each column's codes are contiguous
        for (int j = 0; j < tn; ++j) {
          const int64_t f0 = (c0 + j) * w.k + r0;
          const uint8_t* in = codes + j;
          int i = 0;
          if (f0 & 1) {
            StoreQdqNibble(packed, f0, in[0]);
            i = 1;
          }
          for (; i + 1 < rows; i += 2) {
            packed[(f0 + i) / 2] = static_cast<uint8_t>((in[i * kTileCols] & 0x0f) |
                                                        ((in[(i + 1) * kTileCols] & 0x0f) << 4));
          }
          if (i < rows) StoreQdqNibble(packed, f0 + i, in[i * kTileCols]);
        }
      } else {
        for (int i = 0; i < rows; ++i) {
          const int64_t f0 = (r0 + i) * w.n + c0;
          const uint8_t* in = codes + i * kTileCols;
          int j = 0;
          if (f0 & 1) {
            StoreQdqNibble(packed, f0, in[0]);
            j = 1;
          }
          for (; j + 1 < tn; j += 2) {
            packed[(f0 + j) / 2] = static_cast<uint8_t>((in[j] & 0x0f) | ((in[j + 1] & 0x0f) << 4));
          }
          if (j < tn) StoreQdqNibble(packed, f0 + j, in[j]);
        }
      }
    }
    return true;
  };
  if (by_column) {
    // Each column's K values are contiguous and columns are K apart: a tile
    // of columns is read block after block down its columns (the next
    // lines of the same pages), not one block of every column of the range
    // per pass, which touches a new page per column each time. The same
    // bytes; the report's sums add the same tiles in another order.
    for (int64_t s0 = n_begin; s0 < n_end; s0 += kSuper) {
      for (int64_t b = 0; b < blocks; ++b) {
        if (!super_tile(b, s0)) return false;
      }
    }
  } else {
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t s0 = n_begin; s0 < n_end; s0 += kSuper) {
        if (!super_tile(b, s0)) return false;
      }
    }
  }
  if (sums != nullptr) {
    sums->sum_w2 += sum_w2;
    sums->sum_e2 += sum_e2;
    sums->max_abs = std::max(sums->max_abs, static_cast<double>(max_abs));
    if (probe) int4::AddProbeSums(y, yq, n_begin, n_end, sums);
  }
  return true;
}

// Whether the row path takes this weight: MatMulNBits RTN of a weight
// stored by column (each output column's K values contiguous), whole blocks
// only (no odd-K carry, no short last block), float scales (FP32 and BF16
// sources), at a level that has the row kernels.
template <typename T>
bool TakesNBitsRows(const Int4Kernels& kernels, const WeightView<T>& w, const Int4Options& o) {
  return kernels.nbits_rows != nullptr && std::is_same_v<ScaleOf<T>, float> &&
         o.layout == Int4Layout::kMatMulNBits && o.algorithm == Int4Algorithm::kRtn &&
         w.row_stride == 1 && w.col_stride != 1 && w.k > 0 && w.k % o.block_size == 0;
}

// The row path (nbits_rows.h): one output column at a time from its
// contiguous source row, its codes, scales and zero points written
// contiguously; the tiled path's bytes.
template <typename T>
bool QuantizeNBitsRows(const Int4Kernels& kernels, const WeightView<T>& w, const Int4Options& o,
                       int64_t n_begin, int64_t n_end, uint8_t* packed, float* scales,
                       uint8_t* zero_points, Int4QualitySums* sums) {
  const int64_t blocks = w.k / o.block_size;
  const int4::ProbeScratch probe_sums = int4::StartProbeSums(sums, n_end - n_begin);
  int4::RowStats stats;
  int4::NBitsRowsJob job;
  job.bits = 4;
  job.bs = o.block_size;
  job.symmetric = o.symmetric;
  job.k = w.k;
  job.col_stride = w.col_stride;
  job.codes = packed;
  job.scales = scales;
  if (sums != nullptr) {
    job.stats = &stats;
    job.probe = sums->probe;
    job.probe_rows = sums->probe_rows;
    job.sample_threshold = sums->sample_threshold;
    job.y = probe_sums.y;
    job.yq = probe_sums.yq;
    job.ldy = n_end - n_begin;
    job.n_origin = n_begin;
  }
  const bool ok = int4::RunNBitsRows(
      *kernels.nbits_rows, w.data, job, n_begin, n_end,
      [&](int64_t n, int64_t b, float mn, float mx, float* scale, float* recip, float* zpf) {
        const BlockQ q = RtnParams(mn, mx, o, scale);
        StoreParams(o, w.n, blocks, n, b, *scale, q.zp, scales, zero_points);
        *recip = q.recip;
        *zpf = static_cast<float>(q.zp);
      });
  if (!ok) return false;
  if (sums != nullptr) {
    sums->sum_w2 += stats.w2;
    sums->sum_e2 += stats.e2;
    sums->max_abs = std::max(sums->max_abs, static_cast<double>(stats.emax));
    if (probe_sums.y != nullptr)
      int4::AddProbeSums(probe_sums.y, probe_sums.yq, n_begin, n_end, sums);
  }
  return true;
}

template <typename T, Int4Layout L>
bool QuantizeDispatch(const WeightView<T>& w, const Int4Options& o, int64_t n_begin, int64_t n_end,
                      uint8_t* packed, ScaleOf<T>* scales, uint8_t* zero_points,
                      Int4QualitySums* sums = nullptr) {
  const Int4Kernels& kernels = Int4KernelsFor(ActiveCpuLevel());
  if constexpr (L == Int4Layout::kMatMulNBits && std::is_same_v<ScaleOf<T>, float>) {
    if (TakesNBitsRows(kernels, w, o)) {
      return QuantizeNBitsRows<T>(kernels, w, o, n_begin, n_end, packed, scales, zero_points, sums);
    }
  }
  if (Int4FusedQualitySupported(o, w.row_stride, w.col_stride)) {
    return QuantizeTiledRtn<T, L>(kernels, w, o, n_begin, n_end, packed, scales, zero_points, sums);
  }
  return QuantizeGeneric<T, L>(kernels, w, o, n_begin, n_end, packed, scales, zero_points);
}

}  // namespace

bool Int4FusedQualitySupported(const Int4Options& o, int64_t row_stride, int64_t col_stride) {
  return o.algorithm == Int4Algorithm::kRtn && (col_stride == 1 || row_stride == 1);
}

template <typename T>
bool QuantizeInt4(const WeightView<T>& w, const Int4Options& o, int64_t n_begin, int64_t n_end,
                  uint8_t* packed, ScaleOf<T>* scales, uint8_t* zero_points,
                  Int4QualitySums* sums) {
  if (o.layout == Int4Layout::kMatMulNBits) {
    return QuantizeDispatch<T, Int4Layout::kMatMulNBits>(w, o, n_begin, n_end, packed, scales,
                                                         zero_points, sums);
  }
  return QuantizeDispatch<T, Int4Layout::kQdq>(w, o, n_begin, n_end, packed, scales, zero_points,
                                               sums);
}

Int4Sizes ComputeInt4Sizes(int64_t k, int64_t n, const Int4Options& o) {
  Int4Sizes s;
  s.blocks = (k + o.block_size - 1) / o.block_size;
  s.scale_count = n * s.blocks;
  if (o.layout == Int4Layout::kMatMulNBits) {
    s.packed_bytes = n * s.blocks * (o.block_size / 2);
    s.zero_point_bytes = o.symmetric ? 0 : n * ((s.blocks + 1) / 2);
  } else {
    s.packed_bytes = (k * n + 1) / 2;
    s.zero_point_bytes = o.symmetric ? 0 : (s.blocks * n + 1) / 2;
  }
  return s;
}

template <typename T>
bool QuantizeInt4(const WeightView<T>& w, const Int4Options& o, int64_t n_begin, int64_t n_end,
                  uint8_t* packed, ScaleOf<T>* scales, uint8_t* zero_points) {
  if (o.layout == Int4Layout::kMatMulNBits) {
    return QuantizeDispatch<T, Int4Layout::kMatMulNBits>(w, o, n_begin, n_end, packed, scales,
                                                         zero_points);
  }
  return QuantizeDispatch<T, Int4Layout::kQdq>(w, o, n_begin, n_end, packed, scales, zero_points);
}

template <typename T>
void DequantizeInt4(int64_t k, int64_t n, const Int4Options& o, const uint8_t* packed,
                    const T* scales, const uint8_t* zero_points, int64_t n_begin, int64_t n_end,
                    float* out) {
  const int bs = o.block_size;
  const int64_t blocks = (k + bs - 1) / bs;
  const bool nbits = o.layout == Int4Layout::kMatMulNBits;
  for (int64_t col = n_begin; col < n_end; ++col) {
    float* dst = out + (col - n_begin) * k;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * bs;
      const int rows = static_cast<int>(std::min<int64_t>(bs, k - r0));
      float s;
      int zp;
      if (nbits) {
        s = ElementTraits<T>::ToFloat(scales[col * blocks + b]);
        zp = o.symmetric ? kNBitsSymmetricZeroPoint
                         : (zero_points[col * ((blocks + 1) / 2) + b / 2] >> ((b & 1) * 4)) & 0xf;
        const uint8_t* src = packed + (col * blocks + b) * (bs / 2);
        for (int i = 0; i < rows; ++i) {
          int q = (src[i / 2] >> ((i & 1) * 4)) & 0xf;
          dst[r0 + i] = static_cast<float>(q - zp) * s;
        }
      } else {
        const int64_t fp = o.n_major ? col * blocks + b : b * n + col;
        s = ElementTraits<T>::ToFloat(scales[fp]);
        zp = o.symmetric ? 0 : (zero_points[fp / 2] >> ((fp & 1) * 4)) & 0xf;
        for (int i = 0; i < rows; ++i) {
          const int64_t f = o.n_major ? col * k + r0 + i : (r0 + i) * n + col;
          int q = (packed[f / 2] >> ((f & 1) * 4)) & 0xf;
          if (o.symmetric && q > Int4Bits::kMax) q -= Int4Bits::kLevels;  // int4
          dst[r0 + i] = static_cast<float>(q - zp) * s;
        }
      }
    }
  }
}

template bool QuantizeInt4<float>(const WeightView<float>&, const Int4Options&, int64_t, int64_t,
                                  uint8_t*, float*, uint8_t*);
template bool QuantizeInt4<float>(const WeightView<float>&, const Int4Options&, int64_t, int64_t,
                                  uint8_t*, float*, uint8_t*, Int4QualitySums*);
template bool QuantizeInt4<Half>(const WeightView<Half>&, const Int4Options&, int64_t, int64_t,
                                 uint8_t*, Half*, uint8_t*, Int4QualitySums*);
template bool QuantizeInt4<Half>(const WeightView<Half>&, const Int4Options&, int64_t, int64_t,
                                 uint8_t*, Half*, uint8_t*);
template void DequantizeInt4<float>(int64_t, int64_t, const Int4Options&, const uint8_t*,
                                    const float*, const uint8_t*, int64_t, int64_t, float*);
template void DequantizeInt4<Half>(int64_t, int64_t, const Int4Options&, const uint8_t*,
                                   const Half*, const uint8_t*, int64_t, int64_t, float*);
template bool QuantizeInt4<Bfloat16>(const WeightView<Bfloat16>&, const Int4Options&, int64_t,
                                     int64_t, uint8_t*, float*, uint8_t*, Int4QualitySums*);
template bool QuantizeInt4<Bfloat16>(const WeightView<Bfloat16>&, const Int4Options&, int64_t,
                                     int64_t, uint8_t*, float*, uint8_t*);

}  // namespace quantd::core::quant
