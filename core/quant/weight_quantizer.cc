#include "quantd/core/quant/weight_quantizer.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "int4_kernels.h"
#include "int8_kernels.h"
#include "nbits_rows.h"
#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/finite.h"
#include "quantd/core/quant/quality.h"

namespace quantd::core::quant {
namespace {

constexpr int64_t kTile = 64;  // columns per quality tile
// Columns per quantization work item: a multiple of 64 (even, so QDQ bytes
// are never shared), as wide as possible (whole rows stream sequentially) but
// at most 4096 so cancellation stays prompt and threads share the work.
int64_t RangeWidth(int64_t n, int threads) {
  int64_t w = (n + threads - 1) / threads;
  w = (w + 63) / 64 * 64;
  return std::clamp<int64_t>(w, 64, 4096);
}

template <typename T>
float Load(const T* p, int64_t i) {
  return ElementTraits<T>::ToFloat(p[i]);
}

// Copies columns [c0, c0 + cols) of W into out, column-major [k, cols].
template <typename T>
void GatherTile(const T* data, const MatrixSource& s, int64_t c0, int64_t cols, float* out) {
  if (s.col_stride == 1) {
    // A transpose: 16 rows at a time, so each column of `out` gets a whole
    // 64-byte line per visit (one float per visit made the k-strided column
    // starts fight over the same cache sets when k is a multiple of 1024).
    constexpr int64_t kRows = 16;
    int64_t r0 = 0;
    for (; r0 + kRows <= s.k; r0 += kRows) {
      const T* rows = data + r0 * s.row_stride + c0;
      for (int64_t j = 0; j < cols; ++j) {
        float* o = out + j * s.k + r0;
        for (int64_t i = 0; i < kRows; ++i) o[i] = Load(rows + i * s.row_stride, j);
      }
    }
    for (int64_t r = r0; r < s.k; ++r) {
      const T* row = data + r * s.row_stride + c0;
      for (int64_t j = 0; j < cols; ++j) out[j * s.k + r] = Load(row, j);
    }
  } else {
    for (int64_t j = 0; j < cols; ++j) {
      const T* col = data + (c0 + j) * s.col_stride;
      for (int64_t r = 0; r < s.k; ++r) out[j * s.k + r] = Load(col, r * s.row_stride);
    }
  }
}

// `bfloat16`: whether the caller takes BFLOAT16 sources (QuantizeInt4Matrix).
absl::Status CheckSource(const MatrixSource& s, bool bfloat16 = false) {
  const int64_t elem =
      s.onnx_type == 1 ? 4 : (s.onnx_type == 10 || (bfloat16 && s.onnx_type == 16) ? 2 : 0);
  if (elem == 0) {
    return absl::InvalidArgumentError(absl::StrCat("weights of ONNX type ", s.onnx_type,
                                                   " cannot be quantized (FLOAT or FLOAT16)"));
  }
  if (s.k <= 0 || s.n <= 0) return absl::InvalidArgumentError("empty weight matrix");
  const int64_t last = (s.k - 1) * s.row_stride + (s.n - 1) * s.col_stride;
  if (static_cast<int64_t>(s.bytes.size()) < (last + 1) * elem) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight data has ", s.bytes.size(), " bytes, fewer than its shape needs"));
  }
  return absl::OkStatus();
}

// The error for a source holding NaN or Inf: finds the first such element
// in storage order (slow path, taken only once the tensor is refused).
absl::Status NonFiniteSourceError(const MatrixSource& s) {
  const int64_t count = (s.k - 1) * s.row_stride + (s.n - 1) * s.col_stride + 1;
  const int64_t i = s.onnx_type == 1    ? FirstNonFiniteF32(s.bytes.data(), count)
                    : s.onnx_type == 16 ? FirstNonFiniteBF16(s.bytes.data(), count)
                                        : FirstNonFiniteF16(s.bytes.data(), count);
  if (i < 0)
    return absl::InternalError("a quantizer saw a non-finite weight the scan did not find");
  float v;
  if (s.onnx_type == 1) {
    std::memcpy(&v, s.bytes.data() + 4 * i, 4);
  } else {
    uint16_t h;
    std::memcpy(&h, s.bytes.data() + 2 * i, 2);
    v = s.onnx_type == 16 ? Bfloat16ToFloat(h) : HalfToFloat(h);
  }
  return NonFiniteWeightError("", i, v);
}

// Runs work(tile_index, slot) over tiles with ctx's threads (at most
// max_parallelism of them); tiles not started when the token fires are
// skipped.
template <typename Fn>
absl::Status ForEachTile(int64_t tiles, const RunContext& ctx, int max_parallelism, Fn&& work) {
  std::atomic<bool> cancelled{false};
  ctx.ParallelFor(
      tiles,
      [&](int64_t t, int slot) {
        if (cancelled.load(std::memory_order_relaxed)) return;
        if (ctx.cancelled()) {
          cancelled.store(true, std::memory_order_relaxed);
          return;
        }
        work(t, slot);
      },
      max_parallelism);
  if (cancelled) return absl::CancelledError("cancelled while quantizing a tensor");
  return absl::OkStatus();
}

// Fused quality sums per thread slot: the code tiles of a slot add their
// sums to its Int4QualitySums (with its own probe scratch for X W over
// `width` columns at most); Fill folds every slot into one
// QualityAccumulator. Used by one tensor's loop; a slot by one thread at a
// time.
class FusedQualitySlots {
 public:
  FusedQualitySlots(int64_t k, int slots, int64_t width, uint64_t sample_threshold)
      : acc_(k), sums_(static_cast<size_t>(slots)), scratch_(static_cast<size_t>(slots)) {
    for (size_t i = 0; i < sums_.size(); ++i) {
      sums_[i].probe = acc_.probe();
      sums_[i].probe_rows = QualityAccumulator::kProbeRows;
      sums_[i].sample_threshold = sample_threshold;
      scratch_[i].resize(static_cast<size_t>(2 * QualityAccumulator::kProbeRows * width));
      sums_[i].scratch = scratch_[i].data();
    }
  }

  Int4QualitySums* slot(int i) { return &sums_[static_cast<size_t>(i)]; }

  void Fill(TensorReport* quality) {
    for (const Int4QualitySums& q : sums_) {
      acc_.AddSums(q.sum_w2, q.sum_e2, q.max_abs, q.sum_y2, q.sum_ye2);
    }
    acc_.Fill(quality);
  }

 private:
  QualityAccumulator acc_;
  std::vector<Int4QualitySums> sums_;
  std::vector<std::vector<float>> scratch_;
};

template <typename T>
absl::StatusOr<Int4Result> Int4Impl(const MatrixSource& s, const Int4Options& o,
                                    const RunContext& ctx, TensorReport* quality,
                                    QualityLevel level) {
  const T* data = reinterpret_cast<const T*>(s.bytes.data());
  WeightView<T> view{data, s.k, s.n, s.row_stride, s.col_stride};
  Int4Sizes sizes = ComputeInt4Sizes(s.k, s.n, o);
  Int4Result out;
  out.packed.assign(sizes.packed_bytes, 0);
  out.scales.assign(sizes.scale_count * sizeof(ScaleOf<T>), 0);
  out.zero_points.assign(sizes.zero_point_bytes, 0);
  ScaleOf<T>* scales = reinterpret_cast<ScaleOf<T>*>(out.scales.data());
  uint8_t* zps = o.symmetric ? nullptr : out.zero_points.data();
  // QDQ packs along rows: with odd N two columns of different tiles share a
  // byte, so one thread does it all. (Stored n-major, a range of columns
  // starts at a multiple of 64 columns, hence on a whole byte.)
  const int threads =
      o.layout == Int4Layout::kQdq && !o.n_major && (s.n & 1) ? 1 : ctx.Parallelism();
  const int64_t width = RangeWidth(s.n, threads);
  const int64_t ranges = (s.n + width - 1) / width;
  std::atomic<bool> non_finite{false};
  const uint64_t threshold = ProbeSampleThreshold(s.n, level);
  // Fused quality: the tiles report their sums while in cache.
  std::optional<FusedQualitySlots> fused;
  if (quality != nullptr && Int4FusedQualitySupported(o, s.row_stride, s.col_stride)) {
    fused.emplace(s.k, threads, width, threshold);
  }
  absl::Status st = ForEachTile(ranges, ctx, threads, [&](int64_t t, int slot) {
    const int64_t c0 = t * width, c1 = std::min(s.n, c0 + width);
    const bool ok =
        fused ? QuantizeInt4(view, o, c0, c1, out.packed.data(), scales, zps, fused->slot(slot))
              : QuantizeInt4(view, o, c0, c1, out.packed.data(), scales, zps);
    if (!ok) non_finite.store(true, std::memory_order_relaxed);
  });
  if (!st.ok()) return st;
  if (non_finite) return NonFiniteSourceError(s);
  if (fused) {
    fused->Fill(quality);
  } else if (quality != nullptr) {
    // Quality in a second pass, by column tiles (the probe product needs
    // whole columns).
    const int64_t tiles = (s.n + kTile - 1) / kTile;
    std::vector<QualityAccumulator> acc;
    std::vector<std::vector<float>> w_buf(threads), q_buf(threads);
    for (int i = 0; i < threads; ++i) acc.emplace_back(s.k);
    st = ForEachTile(tiles, ctx, threads, [&](int64_t t, int slot) {
      const int64_t c0 = t * kTile, c1 = std::min(s.n, c0 + kTile);
      auto& wb = w_buf[slot];
      auto& qb = q_buf[slot];
      wb.resize(s.k * kTile);
      qb.resize(s.k * kTile);
      GatherTile(data, s, c0, c1 - c0, wb.data());
      DequantizeInt4(s.k, s.n, o, out.packed.data(), scales, zps, c0, c1, qb.data());
      acc[slot].AddColumns(wb.data(), qb.data(), c1 - c0, ProbeGroupSampled(t, threshold));
    });
    if (!st.ok()) return st;
    for (int i = 1; i < threads; ++i) acc[0].Merge(acc[i]);
    acc[0].Fill(quality);
  }
  return out;
}

// Per-column INT8 parameters: per channel, or one for the tensor from the
// columns' ranges.
std::vector<Int8Params> Int8ParamsOf(const std::vector<float>& mins, const std::vector<float>& maxs,
                                     const Int8Options& o) {
  std::vector<Int8Params> params;
  if (o.per_channel) {
    params.resize(mins.size());
    for (size_t c = 0; c < mins.size(); ++c) {
      params[c] = ComputeInt8Params(mins[c], maxs[c], o.type, o.reduce_range);
    }
  } else {
    float mn = *std::min_element(mins.begin(), mins.end());
    float mx = *std::max_element(maxs.begin(), maxs.end());
    params.push_back(ComputeInt8Params(mn, mx, o.type, o.reduce_range));
  }
  return params;
}

// Column ranges of at most 4096 columns as work items, two streaming passes
// (column ranges, then codes with the quality sums fused into the code
// tiles, as Int4Impl does); int8_kernels.h picks the traversal per layout.
template <typename T>
absl::StatusOr<Int8Result> Int8Impl(const MatrixSource& s, const Int8Options& o,
                                    const RunContext& ctx, TensorReport* quality,
                                    QualityLevel level) {
  const T* data = reinterpret_cast<const T*>(s.bytes.data());
  const int8::Int8Kernels& kernels = int8::Int8KernelsFor(ActiveCpuLevel());
  const int threads = ctx.Parallelism();
  const int64_t width = RangeWidth(s.n, threads);
  const int64_t ranges = (s.n + width - 1) / width;
  std::vector<std::vector<float>> scratch(threads);
  for (auto& buf : scratch) buf.resize(int8::ColumnScratchFloats(s.k, width));
  std::vector<float> mins(s.n), maxs(s.n);
  std::atomic<bool> non_finite{false};
  absl::Status st = ForEachTile(ranges, ctx, threads, [&](int64_t t, int slot) {
    const int64_t c0 = t * width, c1 = std::min(s.n, c0 + width);
    if (!int8::ColumnRanges(kernels, data, s.k, s.row_stride, s.col_stride, c0, c1, mins.data(),
                            maxs.data(), scratch[slot].data())) {
      non_finite.store(true, std::memory_order_relaxed);
    }
  });
  if (!st.ok()) return st;
  if (non_finite) return NonFiniteSourceError(s);
  Int8Result out;
  out.params = Int8ParamsOf(mins, maxs, o);
  std::vector<float> scale(s.n), zp(s.n);
  for (int64_t c = 0; c < s.n; ++c) {
    const Int8Params& p = out.params[o.per_channel ? c : 0];
    scale[c] = p.scale;
    zp[c] = static_cast<float>(p.zero_point);
  }
  out.data.assign(s.k * s.n, 0);
  // Fused quality: the code tiles report their sums while in cache.
  std::optional<FusedQualitySlots> fused;
  if (quality != nullptr) fused.emplace(s.k, threads, width, ProbeSampleThreshold(s.n, level));
  st = ForEachTile(ranges, ctx, threads, [&](int64_t t, int slot) {
    const int64_t c0 = t * width, c1 = std::min(s.n, c0 + width);
    int8::CodeColumns(kernels, data, s.k, s.row_stride, s.col_stride, c0, c1, scale.data(),
                      zp.data(), o.type, out.data.data(), o.out_row_stride, o.out_col_stride,
                      fused ? fused->slot(slot) : nullptr, scratch[slot].data());
  });
  if (!st.ok()) return st;
  if (fused) fused->Fill(quality);
  return out;
}

// ---- MatMulNBits 8-bit blocks (Blockwise8): one block of one column,
// contiguous. The scalar definition of the codes first; the SSE2 versions
// (x86-64's baseline) compute the same bits.

// codes[i] = clamp(round_half_away(x[i] / scale + zp), 0, 255) and the
// dequantized value (code - zp) * scale into deq[i].
void Block8CodesScalar(const float* x, int64_t n, float scale, float rcp, float zpf, uint8_t* codes,
                       float* deq) {
  for (int64_t i = 0; i < n; ++i) {
    // |w / scale| <= 255 + zp: roundf's result, without the libm call.
    const float r = int4::RoundHalfAway(x[i] * rcp + zpf);
    const float q = r < 0.0f ? 0.0f : (r > 255.0f ? 255.0f : r);
    codes[i] = static_cast<uint8_t>(q);
    deq[i] = (q - zpf) * scale;
  }
}

#if defined(__x86_64__)
// minps/maxps select as std::min/std::max do (a < b ? a : b); lanes change
// only which of two equal values wins, which matters for zeros alone (-0 ==
// +0): a zero extreme is found again in the scalar order (MinMax, which
// keeps the first of equal values). REQUIRES: finite values.
void Block8MinMax(const float* x, int64_t n, float* mn, float* mx) {
  if (n < 8) return MinMax(x, n, 1, mn, mx);
  __m128 lo = _mm_loadu_ps(x), hi = lo;
  int64_t i = 4;
  for (; i + 4 <= n; i += 4) {
    const __m128 v = _mm_loadu_ps(x + i);
    lo = _mm_min_ps(lo, v);
    hi = _mm_max_ps(hi, v);
  }
  alignas(16) float l[4], h[4];
  _mm_store_ps(l, lo);
  _mm_store_ps(h, hi);
  float a = l[0], b = h[0];
  for (int j = 1; j < 4; ++j) {
    a = std::min(a, l[j]);
    b = std::max(b, h[j]);
  }
  for (; i < n; ++i) {
    a = std::min(a, x[i]);
    b = std::max(b, x[i]);
  }
  if (a == 0.0f || b == 0.0f) return MinMax(x, n, 1, mn, mx);
  *mn = a;
  *mx = b;
}

// Four lanes of Block8CodesScalar, the same float operations in the same
// order (mulps then addps: no fused multiply-add at SSE2).
inline __m128 Block8Code4(__m128 v, __m128 r, __m128 z) {
  __m128 t = int4::RoundHalfAwaySse2(_mm_add_ps(_mm_mul_ps(v, r), z));
  t = _mm_andnot_ps(_mm_cmplt_ps(t, _mm_setzero_ps()), t);  // r < 0 ? 0 : r
  const __m128 big = _mm_cmpgt_ps(t, _mm_set1_ps(255.0f));  // r > 255 ? 255 : r
  return _mm_or_ps(_mm_and_ps(big, _mm_set1_ps(255.0f)), _mm_andnot_ps(big, t));
}

void Block8Codes(const float* x, int64_t n, float scale, float rcp, float zpf, uint8_t* codes,
                 float* deq) {
  const __m128 r = _mm_set1_ps(rcp), z = _mm_set1_ps(zpf), sc = _mm_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128 q[4];
    for (int j = 0; j < 4; ++j) {
      q[j] = Block8Code4(_mm_loadu_ps(x + i + 4 * j), r, z);
      _mm_storeu_ps(deq + i + 4 * j, _mm_mul_ps(_mm_sub_ps(q[j], z), sc));
    }
    const __m128i lo = _mm_packs_epi32(_mm_cvttps_epi32(q[0]), _mm_cvttps_epi32(q[1]));
    const __m128i hi = _mm_packs_epi32(_mm_cvttps_epi32(q[2]), _mm_cvttps_epi32(q[3]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(lo, hi));
  }
  Block8CodesScalar(x + i, n - i, scale, rcp, zpf, codes + i, deq + i);
}
#else
void Block8MinMax(const float* x, int64_t n, float* mn, float* mx) { MinMax(x, n, 1, mn, mx); }
void Block8Codes(const float* x, int64_t n, float scale, float rcp, float zpf, uint8_t* codes,
                 float* deq) {
  Block8CodesScalar(x, n, scale, rcp, zpf, codes, deq);
}
#endif

// One 8-bit block's scale (as stored, S = ScaleOf the source) and zero
// point from its extremes: symmetric m / -128 with m the extreme of larger
// magnitude (a tie picks mn), zero point 128; asymmetric the range widened
// to include 0 over 255 steps.
template <typename S>
void Block8Params(float mn, float mx, bool symmetric, float* scale, int* zp) {
  if (symmetric) {
    const float m = std::fabs(mx) > std::fabs(mn) ? mx : mn;
    *scale = ElementTraits<S>::ToFloat(ElementTraits<S>::FromFloat(m / -128.0f));
    *zp = 128;
    return;
  }
  mn = std::min(mn, 0.0f);
  mx = std::max(mx, 0.0f);
  *scale = ElementTraits<S>::ToFloat(ElementTraits<S>::FromFloat((mx - mn) / 255.0f));
  *zp = *scale != 0.0f ? static_cast<int>(std::clamp(std::roundf(-mn / *scale), 0.0f, 255.0f)) : 0;
}

// The row path of Blockwise8 at AVX-512 (nbits_rows.h): columns [c0, c1)
// (one 64-column tile) of a source stored by column with whole blocks, each
// coded from its contiguous row, with the same bytes as the per-column loop
// below; the quality sums go to `acc` (may be null), the probe products
// when the tile's group is sampled. Returns false when a value is NaN or
// infinite.
template <typename T>
bool Blockwise8Rows(const int4::NBitsRowKernels& rk, const T* data, const MatrixSource& s, int bs,
                    bool symmetric, int64_t c0, int64_t c1, Blockwise8Result* out,
                    QualityAccumulator* acc, uint64_t threshold) {
  static_assert(std::is_same_v<ScaleOf<T>, float>, "row path: float scales");
  constexpr int kBatch = int4::kProbeBatchRows;
  constexpr int kProbe = QualityAccumulator::kProbeRows;
  const int64_t blocks = s.k / bs;
  int4::RowStats stats;
  float y[kProbe * kTile], yq[kProbe * kTile];
  int4::NBitsRowsJob job;
  job.bits = 8;
  job.bs = bs;
  job.symmetric = symmetric;
  job.k = s.k;
  job.col_stride = s.col_stride;
  job.codes = out->codes.data();
  job.scales = reinterpret_cast<float*>(out->scales.data());
  const bool sampled = acc != nullptr && ProbeGroupSampled(c0 / kTile, threshold);
  if (acc != nullptr) {
    job.stats = &stats;
    job.probe = acc->probe();
    job.probe_rows = kProbe;
    job.sample_threshold = threshold;
    job.y = y;
    job.yq = yq;
    job.ldy = kTile;
    job.n_origin = c0;
  }
  const bool ok = int4::RunNBitsRows(
      rk, data, job, c0, c1,
      [&](int64_t n, int64_t b, float mn, float mx, float* scale, float* recip, float* zpf) {
        int zp;
        Block8Params<float>(mn, mx, false, scale, &zp);
        out->zero_points[n * blocks + b] = static_cast<uint8_t>(zp);
        *recip = *scale != 0.0f ? 1.0f / *scale : 0.0f;
        *zpf = static_cast<float>(zp);
      });
  if (!ok) return false;
  if (acc == nullptr) return true;
  double sum_y2 = 0, sum_ye2 = 0;
  for (int64_t j0 = 0; sampled && j0 < c1 - c0; j0 += kBatch) {
    for (int p = 0; p < kProbe; ++p) {
      for (int64_t j = j0; j < std::min<int64_t>(c1 - c0, j0 + kBatch); ++j) {
        const double a = y[p * kTile + j];
        const double d = static_cast<double>(y[p * kTile + j] - yq[p * kTile + j]);
        sum_y2 += a * a;
        sum_ye2 += d * d;
      }
    }
  }
  acc->AddSums(stats.w2, stats.e2, stats.emax, sum_y2, sum_ye2);
  return true;
}

template <typename T>
absl::StatusOr<Blockwise8Result> Blockwise8Impl(const MatrixSource& s, int bs, bool symmetric,
                                                const RunContext& ctx, TensorReport* quality,
                                                QualityLevel level) {
  const T* data = reinterpret_cast<const T*>(s.bytes.data());
  const int threads = ctx.Parallelism();
  const int64_t tiles = (s.n + kTile - 1) / kTile;
  const int64_t blocks = (s.k + bs - 1) / bs;
  Blockwise8Result out;
  out.codes.assign(static_cast<size_t>(s.n * blocks * bs), 0);
  out.scales.assign(static_cast<size_t>(s.n * blocks) * sizeof(ScaleOf<T>), 0);
  if (!symmetric) out.zero_points.assign(static_cast<size_t>(s.n * blocks), 0);
  using S = ScaleOf<T>;  // float32 for a bfloat16 source
  S* scales = reinterpret_cast<S*>(out.scales.data());
  std::vector<std::vector<float>> w_buf(threads), q_buf(threads);
  std::vector<QualityAccumulator> acc;
  if (quality != nullptr) {
    for (int i = 0; i < threads; ++i) acc.emplace_back(s.k);
  }
  const uint64_t threshold = ProbeSampleThreshold(s.n, level);
  std::atomic<bool> non_finite{false};
  const int4::NBitsRowKernels* row_kernels = int4::Int4KernelsFor(ActiveCpuLevel()).nbits_rows;
  if (!std::is_same_v<S, float> || s.row_stride != 1 || s.col_stride == 1 || s.k % bs != 0) {
    row_kernels = nullptr;  // the row path: float scales, stored by column, whole blocks
  }
  static_assert(kTile == QualityAccumulator::kProbeGroup, "a tile is one sampling group");
  absl::Status st = ForEachTile(tiles, ctx, threads, [&](int64_t t, int slot) {
    const int64_t c0 = t * kTile, c1 = std::min(s.n, c0 + kTile);
    if constexpr (std::is_same_v<S, float>) {
      if (row_kernels != nullptr) {
        QualityAccumulator* a = quality != nullptr ? &acc[slot] : nullptr;
        if (!Blockwise8Rows(*row_kernels, data, s, bs, symmetric, c0, c1, &out, a, threshold)) {
          non_finite.store(true, std::memory_order_relaxed);
        }
        return;
      }
    }
    w_buf[slot].resize(s.k * kTile);
    q_buf[slot].resize(s.k * kTile);
    float* wb = w_buf[slot].data();
    float* qb = q_buf[slot].data();
    GatherTile(data, s, c0, c1 - c0, wb);
    if (!AllFiniteF32Rows(wb, s.k, static_cast<int>(c1 - c0), static_cast<int>(s.k))) {
      non_finite.store(true, std::memory_order_relaxed);
      return;
    }
    for (int64_t j = 0; j < c1 - c0; ++j) {
      const int64_t c = c0 + j;
      const float* col = wb + j * s.k;
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t k0 = b * bs, rows = std::min<int64_t>(s.k, k0 + bs) - k0;
        float mn, mx;
        Block8MinMax(col + k0, rows, &mn, &mx);
        float scale;
        int zp;
        Block8Params<S>(mn, mx, symmetric, &scale, &zp);
        if (!symmetric) out.zero_points[c * blocks + b] = static_cast<uint8_t>(zp);
        scales[c * blocks + b] = ElementTraits<S>::FromFloat(scale);
        const float rcp = scale != 0.0f ? 1.0f / scale : 0.0f;
        uint8_t* codes = out.codes.data() + (c * blocks + b) * bs;
        Block8Codes(col + k0, rows, scale, rcp, static_cast<float>(zp), codes, qb + j * s.k + k0);
      }
    }
    if (quality != nullptr) {
      acc[slot].AddColumns(wb, qb, c1 - c0, ProbeGroupSampled(c0 / kTile, threshold));
    }
  });
  if (!st.ok()) return st;
  if (non_finite) return NonFiniteSourceError(s);
  if (quality != nullptr) {
    for (int i = 1; i < threads; ++i) acc[0].Merge(acc[i]);
    acc[0].Fill(quality);
  }
  return out;
}

}  // namespace

absl::StatusOr<Blockwise8Result> QuantizeBlockwise8Matrix(const MatrixSource& src, int block_size,
                                                          bool symmetric, const RunContext& ctx,
                                                          TensorReport* quality,
                                                          QualityLevel level) {
  if (absl::Status st = CheckSource(src, /*bfloat16=*/true); !st.ok()) return st;
  if (block_size < 16 || block_size > 256 || (block_size & (block_size - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block size ", block_size, " is not supported; use 16..256, a power of 2"));
  }
  if (src.onnx_type == 1)
    return Blockwise8Impl<float>(src, block_size, symmetric, ctx, quality, level);
  if (src.onnx_type == 16)
    return Blockwise8Impl<Bfloat16>(src, block_size, symmetric, ctx, quality, level);
  return Blockwise8Impl<Half>(src, block_size, symmetric, ctx, quality, level);
}

absl::StatusOr<Int4Result> QuantizeInt4Matrix(const MatrixSource& src, const Int4Options& options,
                                              const RunContext& ctx, TensorReport* quality,
                                              QualityLevel level) {
  if (absl::Status st = CheckSource(src, /*bfloat16=*/true); !st.ok()) return st;
  switch (options.block_size) {
    case 16:
    case 32:
    case 64:
    case 128:
    case 256:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "block size ", options.block_size, " is not supported; use 16..256, a power of 2"));
  }
  if (src.onnx_type == 1) return Int4Impl<float>(src, options, ctx, quality, level);
  if (src.onnx_type == 16) return Int4Impl<Bfloat16>(src, options, ctx, quality, level);
  return Int4Impl<Half>(src, options, ctx, quality, level);
}

absl::StatusOr<Int8Result> QuantizeInt8Matrix(const MatrixSource& src, const Int8Options& options,
                                              const RunContext& ctx, TensorReport* quality,
                                              QualityLevel level) {
  if (absl::Status st = CheckSource(src); !st.ok()) return st;
  if (src.onnx_type == 1) return Int8Impl<float>(src, options, ctx, quality, level);
  return Int8Impl<Half>(src, options, ctx, quality, level);
}

}  // namespace quantd::core::quant
