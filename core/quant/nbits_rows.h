// The driver of the MatMulNBits row kernels (int4_kernels.h, "Row kernels"),
// shared by the INT4 quantizer (int4_blockwise.cc) and blockwise INT8
// (weight_quantizer.cc): columns of a weight stored by column, each coded
// from its contiguous source row. Private to core/quant; not installed.
// Unlike the kernels it allocates its scratch (a few rows).
#ifndef QUANTD_CORE_QUANT_NBITS_ROWS_H_
#define QUANTD_CORE_QUANT_NBITS_ROWS_H_

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "int4_kernels.h"
#include "quantd/core/base/finite.h"
#include "quantd/core/quant/quality.h"

namespace quantd::core::quant::int4 {

// One call's geometry and outputs. Column n's codes start at codes + n * k *
// bits / 8 and its scales at scales + n * (k / bs).
struct NBitsRowsJob {
  int bits = 4;  // 4 or 8
  int bs = 32;
  bool symmetric = true;
  int64_t k = 0;           // REQUIRES: a multiple of bs
  int64_t col_stride = 0;  // elements between the source rows of two columns
  uint8_t* codes = nullptr;
  float* scales = nullptr;
  RowStats* stats = nullptr;  // the error sums, or null for none
  // The probe products of sampled 64-column groups (ProbeGroupSampled of
  // the column / 64 and sample_threshold), or probe null for none: for
  // column n and probe row p, y[p * ldy + n - n_origin] and yq likewise.
  const float* probe = nullptr;
  int probe_rows = 0;
  uint64_t sample_threshold = 0;
  float* y = nullptr;
  float* yq = nullptr;
  int64_t ldy = 0;
  int64_t n_origin = 0;
};

// Codes columns [n_begin, n_end) of `data` (FP32 or BF16); asymmetric
// blocks take their parameters from asym(n, b, mn, mx, &scale, &recip,
// &zpf), which also stores the zero point. Returns false, before any code of
// the offending column, when a value is NaN or infinite.
// REQUIRES: n_begin is a multiple of 64 when job.probe is set.
template <typename T, typename Asym>
bool RunNBitsRows(const NBitsRowKernels& rk, const T* data, const NBitsRowsJob& job,
                  int64_t n_begin, int64_t n_end, Asym&& asym) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, Bfloat16>,
                "row path: FP32 or BF16 sources");
  constexpr bool kFloat = std::is_same_v<T, float>;
  // Columns go in batches of kBatch, so that the probe products of a sampled
  // group read the probe once per batch; batches never straddle a group.
  constexpr int kBatch = kProbeBatchRows;
  static_assert(QualityAccumulator::kProbeGroup % kBatch == 0, "batches within groups");
  const int64_t k = job.k, blocks = k / job.bs;
  std::vector<float> wide(kFloat ? 0 : kBatch * k);
  std::vector<float> wq(job.probe != nullptr ? kBatch * k : 0);
  std::vector<float> mn(blocks), mx(blocks), recip(blocks), zpf(blocks);
  for (int64_t n0 = n_begin; n0 < n_end; n0 += kBatch) {
    const int rows = static_cast<int>(std::min<int64_t>(kBatch, n_end - n0));
    const bool sampled =
        job.probe != nullptr &&
        ProbeGroupSampled(n0 / QualityAccumulator::kProbeGroup, job.sample_threshold);
    const float* row_of[kBatch];
    const float* wq_of[kBatch];
    for (int r = 0; r < rows; ++r) {
      const int64_t n = n0 + r;
      const T* src = data + n * job.col_stride;
      bool ordered;
      if constexpr (kFloat) {
        row_of[r] = src;
        ordered = rk.block_min_max(src, k, job.bs, mn.data(), mx.data());
      } else {
        float* dst = wide.data() + r * k;
        row_of[r] = dst;
        ordered = rk.widen_min_max(src, n + 1 < n_end ? src + job.col_stride : nullptr, k, job.bs,
                                   dst, mn.data(), mx.data());
      }
      if (!ordered || !AllFiniteF32Rows(mn.data(), 0, 1, static_cast<int>(blocks)) ||
          !AllFiniteF32Rows(mx.data(), 0, 1, static_cast<int>(blocks))) {
        return false;
      }
      float* col_scales = job.scales + n * blocks;
      if (job.symmetric) {
        rk.symmetric_params(mn.data(), mx.data(), blocks, job.bits, col_scales, recip.data(),
                            zpf.data());
      } else {
        for (int64_t b = 0; b < blocks; ++b) {
          asym(n, b, mn[b], mx[b], &col_scales[b], &recip[b], &zpf[b]);
        }
      }
      float* row_wq = sampled ? wq.data() + r * k : nullptr;
      wq_of[r] = row_wq;
      rk.code(row_of[r], k, job.bs, job.bits, col_scales, recip.data(), zpf.data(),
              job.codes + n * k * job.bits / 8, job.stats, row_wq);
    }
    if (sampled) {
      rk.probe_dots(job.probe, k, job.probe_rows, row_of, wq_of, rows, k,
                    job.y + (n0 - job.n_origin), job.yq + (n0 - job.n_origin), job.ldy);
    }
  }
  return true;
}

}  // namespace quantd::core::quant::int4

#endif  // QUANTD_CORE_QUANT_NBITS_ROWS_H_
