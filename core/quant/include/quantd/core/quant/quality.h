// Quality of a quantized weight matrix, measured tile by tile so a tensor is
// never held twice in float32:
//   SQNR = 10 log10(sum w^2 / sum (w - w')^2), relative L2 error, max |w - w'|,
//   relative output error ||X W - X W'|| / ||X W|| on a fixed Gaussian probe X
//   [kProbeRows, K] (seeded, identical on every machine; Eigen GEMM).
//
// One accumulator per thread; Merge() the partial results. Not thread-safe.
#ifndef QUANTD_CORE_QUANT_QUALITY_H_
#define QUANTD_CORE_QUANT_QUALITY_H_

#include <cstdint>
#include <vector>

#include "quantd/core/report.h"

namespace quantd::core::quant {

class QualityAccumulator {
 public:
  static constexpr int kProbeRows = 8;

  // `k`: rows of W (the reduction dimension of X W).
  explicit QualityAccumulator(int64_t k);

  // Adds `cols` columns; `w` and `w_hat` are column-major [k, cols] (ld k).
  void AddColumns(const float* w, const float* w_hat, int64_t cols);
  void Merge(const QualityAccumulator& other);
  // Writes sqnr_db, rel_l2_error, max_abs_error, rel_output_error; a figure
  // that is not finite is left unset (sqnr_db of an exact result, or when
  // w is all zeros).
  void Fill(TensorReport* report) const;

 private:
  int64_t k_;
  std::vector<float> probe_;  // [kProbeRows, k] row-major
  double sum_w2_ = 0, sum_e2_ = 0, max_abs_ = 0;
  double sum_y2_ = 0, sum_ye2_ = 0;
};

// Deterministic N(0, 1) samples (xorshift64* + Box-Muller), for probes and
// benchmarks.
void FillGaussian(uint64_t seed, float* out, int64_t count);

}  // namespace quantd::core::quant

#endif  // QUANTD_CORE_QUANT_QUALITY_H_
