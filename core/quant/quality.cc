#include "quantd/core/quant/quality.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>

#include <Eigen/Core>

#include "absl/synchronization/mutex.h"
#include "quantd/core/base/cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace quantd::core::quant {

void FillGaussian(uint64_t seed, float* out, int64_t count) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  auto next = [&s]() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    uint64_t v = s * 0x2545F4914F6CDD1Dull;
    return (static_cast<double>(v >> 11) + 0.5) * (1.0 / 9007199254740992.0);  // (0, 1)
  };
  for (int64_t i = 0; i < count; i += 2) {
    double u1 = next(), u2 = next();
    double r = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(r * std::cos(2.0 * M_PI * u2));
    if (i + 1 < count) out[i + 1] = static_cast<float>(r * std::sin(2.0 * M_PI * u2));
  }
}

namespace {

// The probe rows for reduction size k. Every accumulator of that size uses
// the same rows (fixed seed), so they are made once per size and shared,
// not once per tensor or per task: [8, 8192] takes a few milliseconds of
// Gaussians, once per weight on the thread that starts its loop. The cache
// holds at most kMaxSizes sizes (a server sees many models over its life);
// accumulators keep theirs alive when it is dropped.
std::shared_ptr<const std::vector<float>> SharedProbe(int64_t k) {
  constexpr size_t kMaxSizes = 32;
  static absl::Mutex mu;
  static auto* const cache = new std::map<int64_t, std::shared_ptr<const std::vector<float>>>;
  absl::MutexLock lock(&mu);
  auto it = cache->find(k);
  if (it != cache->end()) return it->second;
  if (cache->size() >= kMaxSizes) cache->clear();
  auto probe = std::make_shared<std::vector<float>>(QualityAccumulator::kProbeRows * k);
  FillGaussian(0x51ADull, probe->data(), static_cast<int64_t>(probe->size()));
  return cache->emplace(k, std::move(probe)).first->second;
}

}  // namespace

QualityAccumulator::QualityAccumulator(int64_t k) : k_(k), probe_(SharedProbe(k)) {}

int64_t SampledProbeColumns(int64_t n) {
  constexpr double kRelativeError = 0.01, kZ99 = 2.576, kSpread = 0.35;
  constexpr double c = (kRelativeError / (kZ99 * kSpread)) * (kRelativeError / (kZ99 * kSpread));
  if (n <= 0) return 0;
  return std::min<int64_t>(n, static_cast<int64_t>(std::ceil(n / (1.0 + n * c))));
}

uint64_t ProbeSampleThreshold(int64_t n, QualityLevel level) {
  constexpr uint64_t kAll = uint64_t{1} << 32;
  if (level == QualityLevel::kFull || n <= 0) return kAll;
  const int64_t m = SampledProbeColumns(n);
  if (m >= n) return kAll;
  return static_cast<uint64_t>(std::ceil(static_cast<double>(m) / n * static_cast<double>(kAll)));
}

void QualityAccumulator::AddSums(double sum_w2, double sum_e2, double max_abs, double sum_y2,
                                 double sum_ye2) {
  sum_w2_ += sum_w2;
  sum_e2_ += sum_e2;
  max_abs_ = std::max(max_abs_, max_abs);
  sum_y2_ += sum_y2;
  sum_ye2_ += sum_ye2;
}

#if defined(__x86_64__)
namespace {

// AddColumns' eight lanes of double sums in two AVX2 registers each: lane l
// adds elements l, l + 8, ... in order with the scalar loop's operations
// (a multiply, then an add: no FMA, so the same roundings), hence the same
// bits. Returns how many elements it added (a multiple of 8).
__attribute__((target("avx2"))) int64_t ErrorSumsAvx2(const float* w, const float* w_hat, int64_t n,
                                                      double* w2, double* e2, double* mx) {
  const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
  __m256d w2_lo = _mm256_setzero_pd(), w2_hi = w2_lo, e2_lo = w2_lo, e2_hi = w2_lo;
  __m256d mx_lo = w2_lo, mx_hi = w2_lo;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 a = _mm256_loadu_ps(w + i), q = _mm256_loadu_ps(w_hat + i);
    const __m256d a_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(a));
    const __m256d a_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
    const __m256d e_lo = _mm256_sub_pd(a_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(q)));
    const __m256d e_hi = _mm256_sub_pd(a_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(q, 1)));
    w2_lo = _mm256_add_pd(w2_lo, _mm256_mul_pd(a_lo, a_lo));
    w2_hi = _mm256_add_pd(w2_hi, _mm256_mul_pd(a_hi, a_hi));
    e2_lo = _mm256_add_pd(e2_lo, _mm256_mul_pd(e_lo, e_lo));
    e2_hi = _mm256_add_pd(e2_hi, _mm256_mul_pd(e_hi, e_hi));
    // max_pd(|e|, mx) is (|e| > mx ? |e| : mx), the scalar comparison.
    mx_lo = _mm256_max_pd(_mm256_and_pd(e_lo, abs_mask), mx_lo);
    mx_hi = _mm256_max_pd(_mm256_and_pd(e_hi, abs_mask), mx_hi);
  }
  _mm256_storeu_pd(w2, w2_lo);
  _mm256_storeu_pd(w2 + 4, w2_hi);
  _mm256_storeu_pd(e2, e2_lo);
  _mm256_storeu_pd(e2 + 4, e2_hi);
  _mm256_storeu_pd(mx, mx_lo);
  _mm256_storeu_pd(mx + 4, mx_hi);
  return i;
}

}  // namespace
#endif

void QualityAccumulator::AddColumns(const float* w, const float* w_hat, int64_t cols, bool probe) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const Mat> W(w, k_, cols);
  Eigen::Map<const Mat> Wq(w_hat, k_, cols);
  Eigen::Map<const RowMat> X(probe_->data(), kProbeRows, k_);
  // Eight independent lanes per sum, so the loop vectorizes instead of
  // waiting on one accumulator's additions.
  constexpr int kLanes = 8;
  double w2[kLanes] = {}, e2[kLanes] = {}, mx[kLanes] = {};
  const int64_t n = k_ * cols;
  int64_t i = 0;
#if defined(__x86_64__)
  if (ActiveCpuLevel() >= CpuLevel::kAvx2) i = ErrorSumsAvx2(w, w_hat, n, w2, e2, mx);
#endif
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const double a = w[i + l];
      const double e = a - static_cast<double>(w_hat[i + l]);
      w2[l] += a * a;
      e2[l] += e * e;
      const double ae = std::fabs(e);
      mx[l] = ae > mx[l] ? ae : mx[l];
    }
  }
  for (; i < n; ++i) {
    const double a = w[i];
    const double e = a - static_cast<double>(w_hat[i]);
    w2[0] += a * a;
    e2[0] += e * e;
    mx[0] = std::max(mx[0], std::fabs(e));
  }
  for (int l = 0; l < kLanes; ++l) {
    sum_w2_ += w2[l];
    sum_e2_ += e2[l];
    max_abs_ = std::max(max_abs_, mx[l]);
  }
  if (!probe) return;
  Mat y = X * W;
  Mat yq = X * Wq;
  sum_y2_ += y.cast<double>().squaredNorm();
  sum_ye2_ += (y - yq).cast<double>().squaredNorm();
}

void QualityAccumulator::Merge(const QualityAccumulator& o) {
  sum_w2_ += o.sum_w2_;
  sum_e2_ += o.sum_e2_;
  max_abs_ = std::max(max_abs_, o.max_abs_);
  sum_y2_ += o.sum_y2_;
  sum_ye2_ += o.sum_ye2_;
}

void QualityAccumulator::Fill(TensorReport* r) const {
  // Only figures that were computed and are finite: an exact result has no
  // finite SQNR (sqnr_db stays unset; rel_l2_error and max_abs_error say 0).
  auto set = [](std::optional<double>* field, double v) {
    if (std::isfinite(v)) *field = v;
  };
  if (sum_w2_ > 0 && sum_e2_ > 0) set(&r->sqnr_db, 10.0 * std::log10(sum_w2_ / sum_e2_));
  set(&r->rel_l2_error, sum_w2_ > 0 ? std::sqrt(sum_e2_ / sum_w2_) : (sum_e2_ > 0 ? 1.0 : 0.0));
  set(&r->max_abs_error, max_abs_);
  set(&r->rel_output_error,
      sum_y2_ > 0 ? std::sqrt(sum_ye2_ / sum_y2_) : (sum_ye2_ > 0 ? 1.0 : 0.0));
}

}  // namespace quantd::core::quant
