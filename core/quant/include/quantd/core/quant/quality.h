// Quality of a quantized weight matrix, measured tile by tile so a tensor is
// never held twice in float32:
//   SQNR = 10 log10(sum w^2 / sum (w - w')^2), relative L2 error, max |w - w'|,
//   relative output error ||X W - X W'|| / ||X W|| on a fixed Gaussian probe X
//   [kProbeRows, K] (seeded, identical on every machine; Eigen GEMM).
//
// The output error can be measured on every column (QualityLevel::kFull) or on
// a fixed-seed sample of 64-column groups (kSampled, ProbeSampleThreshold):
// the first three figures always cover every weight.
//
// One accumulator per thread; Merge() the partial results. Not thread-safe.
#ifndef QUANTD_CORE_QUANT_QUALITY_H_
#define QUANTD_CORE_QUANT_QUALITY_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "quantd/core/report.h"

namespace quantd::core::quant {

// How much of a tensor's quality is measured.
enum class QualityLevel {
  kFull,     // the output error X W over every column
  kSampled,  // X W on the columns of ProbeSampleThreshold's sample
};

// Columns the sampled output error of a matrix with `n` columns is measured
// on: the finite-population sample size that puts the sampled relative output
// error within 1 % of the whole-matrix figure at 99 % confidence,
//   m = n / (1 + n c),  c = (0.01 / (2.576 * 0.35))^2,
// where 0.35 is the relative spread of one column's term in the square root
// (measured: 0.70 for the squared ratio with the 8-row Gaussian probe, on
// 2048..5632-row Gaussian INT4 matrices). m < 8129 for any n (n = 2048: 80 %, 5632: 59 %, 32000: 20
// %).
int64_t SampledProbeColumns(int64_t n);

// The 32-bit threshold of the sample of a matrix with `n` columns at
// `level`: 64-column group g (columns [64 g, 64 g + 64)) is measured when
// ProbeGroupSampled(g, threshold). kFull and small matrices: every group.
uint64_t ProbeSampleThreshold(int64_t n, QualityLevel level);

// Whether 64-column group `group` is in the sample (a fixed-seed hash of the
// group index below `threshold`; threshold >= 2^32 takes every group). Group
// 0 is always in it, so a sample is never empty.
inline bool ProbeGroupSampled(int64_t group, uint64_t threshold) {
  if (group == 0) return true;
  uint64_t z = static_cast<uint64_t>(group) + 0x9E3779B97F4A7C15ull * 0x5A17ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (z >> 32) < threshold;
}

class QualityAccumulator {
 public:
  static constexpr int kProbeRows = 8;
  static constexpr int kProbeGroup = 64;  // columns per sampling group

  // `k`: rows of W (the reduction dimension of X W).
  explicit QualityAccumulator(int64_t k);

  // Adds `cols` columns; `w` and `w_hat` are column-major [k, cols] (ld k).
  // With `probe` false only the error figures are added (a column group
  // outside the output-error sample).
  void AddColumns(const float* w, const float* w_hat, int64_t cols, bool probe = true);
  // Adds sums computed elsewhere (the fused INT4 path): sum w^2, sum (w -
  // w')^2, max |w - w'|, sum over measured columns of (X w)^2 and of
  // (X w - X w')^2.
  void AddSums(double sum_w2, double sum_e2, double max_abs, double sum_y2, double sum_ye2);
  void Merge(const QualityAccumulator& other);
  // The probe X, [kProbeRows, k] row-major.
  const float* probe() const { return probe_->data(); }
  // Writes sqnr_db, rel_l2_error, max_abs_error, rel_output_error; a figure
  // that is not finite is left unset (sqnr_db of an exact result, or when
  // w is all zeros).
  void Fill(TensorReport* report) const;

 private:
  int64_t k_;
  // [kProbeRows, k] row-major; one per k in the process (SharedProbe).
  std::shared_ptr<const std::vector<float>> probe_;
  double sum_w2_ = 0, sum_e2_ = 0, max_abs_ = 0;
  double sum_y2_ = 0, sum_ye2_ = 0;
};

// Deterministic N(0, 1) samples (xorshift64* + Box-Muller), for probes and
// benchmarks.
void FillGaussian(uint64_t seed, float* out, int64_t count);

}  // namespace quantd::core::quant

#endif  // QUANTD_CORE_QUANT_QUALITY_H_
