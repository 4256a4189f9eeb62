#include "int4_search.h"

#include <algorithm>
#include <cmath>

namespace quantd::core::quant::int4 {
namespace {

// Least-squares refit of the scale for fixed codes (zero point fixed).
template <Int4Layout L>
float RefitScale(const float* v, int rows, const BlockQ& q, int zp, int qmin, int qmax) {
  const float zpf = static_cast<float>(q.zp);
  double num = 0, den = 0;
  for (int i = 0; i < rows; ++i) {
    int c = Code<L>(v[i], q.recip, zpf, q.zp, qmin, qmax);
    double d = c - zp;
    num += d * v[i];
    den += d * d;
  }
  return den > 0 ? static_cast<float>(num / den) : 0.0f;
}

// Least-squares fit of (scale, zero point) for fixed codes: v ~ s * (c - z),
// z rounded to an integer in [0, 15]. False when the codes are constant.
template <Int4Layout L>
bool RefitScaleAndZero(const float* v, int rows, const BlockQ& q, int qmin, int qmax, float* s_out,
                       int* zp_out) {
  const float zpf = static_cast<float>(q.zp);
  double sq = 0, sv = 0, sqq = 0, sqv = 0;
  for (int i = 0; i < rows; ++i) {
    double c = Code<L>(v[i], q.recip, zpf, q.zp, qmin, qmax);
    sq += c;
    sv += v[i];
    sqq += c * c;
    sqv += c * v[i];
  }
  double var = sqq - sq * sq / rows;
  if (var <= 0) return false;
  double s = (sqv - sq * sv / rows) / var;
  if (s == 0) return false;
  double off = (sv - s * sq) / rows;
  int zp = static_cast<int>(std::lround(-off / s));
  *zp_out = std::clamp(zp, Uint4Bits::kMin, Uint4Bits::kMax);
  *s_out = static_cast<float>(s);
  return true;
}

}  // namespace

template <typename T, Int4Layout L>
BlockQ SearchParams(const float* v, int rows, float mn, float mx, const Int4Options& o,
                    BlockErrorFn error, T* scale) {
  const int qmin = QMin(o), qmax = QMax(o);
  const CodeParams cp = MakeCodeParams(L, qmin, qmax);
  BlockQ best = RtnParams(mn, mx, o, scale);
  double best_err = error(v, rows, best, cp);
  if (best_err == 0.0) return best;
  using Tr = ElementTraits<T>;
  struct Cand {
    double err;
    BlockQ q;
    T s;
  };
  constexpr int kTop = 3;
  Cand top[kTop];
  int ntop = 0;
  auto consider = [&](T s, int zp) {
    BlockQ c = MakeBlockQ(s, zp);
    if (!std::isfinite(c.scale) || c.scale == 0.0f) return;
    double e = error(v, rows, c, cp);
    // A candidate must win by more than summation-order noise, so no block
    // is worse than RTN in any order of summation.
    if (e < best_err * (1.0 - 1e-9)) {
      best_err = e;
      best = c;
      *scale = s;
    }
    // Keep the kTop lowest errors as starting points for the refinement.
    int pos = ntop < kTop ? ntop++ : kTop;
    if (pos == kTop) {
      if (e >= top[kTop - 1].err) return;
      pos = kTop - 1;
    }
    while (pos > 0 && top[pos - 1].err > e) {
      top[pos] = top[pos - 1];
      --pos;
    }
    top[pos] = Cand{e, c, s};
  };
  consider(*scale, best.zp);
  if (o.symmetric) {
    const int zp = SymmetricZeroPoint(L);
    constexpr float kMinSteps = static_cast<float>(-Int4Bits::kMin);  // 8
    constexpr float kMaxSteps = static_cast<float>(Int4Bits::kMax);   // 7
    const float m = std::fabs(mx) > std::fabs(mn) ? mx : mn;
    for (int i = 1; i <= 40; ++i) {
      const float f = 1.0f - 0.0125f * static_cast<float>(i);
      consider(Tr::FromFloat(-m * f / kMinSteps), zp);  // extreme -> code -8
    }
    for (int i = 0; i <= 40; ++i) {
      const float f = 1.0f - 0.0125f * static_cast<float>(i);
      consider(Tr::FromFloat(m * f / kMaxSteps), zp);  // extreme -> code +7
    }
  } else {
    const float lo = std::min(mn, 0.0f), hi = std::max(mx, 0.0f);
    for (int a = 0; a < 10; ++a) {
      for (int b = 0; b < 10; ++b) {
        if (a == 0 && b == 0) continue;
        T s;
        BlockQ c = RtnParams<T>(lo * (1.0f - 0.04f * a), hi * (1.0f - 0.04f * b), o, &s);
        consider(s, c.zp);
      }
    }
  }
  // Alternating refinement from each of the best starting points.
  Cand starts[kTop];
  const int nstarts = ntop;
  std::copy(top, top + ntop, starts);
  for (int t = 0; t < nstarts; ++t) {
    BlockQ cur = starts[t].q;
    for (int it = 0; it < 6; ++it) {
      float s;
      int zp = cur.zp;
      if (o.symmetric) {
        s = RefitScale<L>(v, rows, cur, zp, qmin, qmax);
        if (s == 0.0f) break;
      } else if (!RefitScaleAndZero<L>(v, rows, cur, qmin, qmax, &s, &zp)) {
        break;
      }
      BlockQ next = MakeBlockQ(Tr::FromFloat(s), zp);
      if (next.scale == cur.scale && next.zp == cur.zp) break;
      consider(Tr::FromFloat(s), zp);
      cur = next;
    }
  }
  return best;
}

template BlockQ SearchParams<float, Int4Layout::kMatMulNBits>(const float*, int, float, float,
                                                              const Int4Options&, BlockErrorFn,
                                                              float*);
template BlockQ SearchParams<float, Int4Layout::kQdq>(const float*, int, float, float,
                                                      const Int4Options&, BlockErrorFn, float*);
template BlockQ SearchParams<Half, Int4Layout::kMatMulNBits>(const float*, int, float, float,
                                                             const Int4Options&, BlockErrorFn,
                                                             Half*);
template BlockQ SearchParams<Half, Int4Layout::kQdq>(const float*, int, float, float,
                                                     const Int4Options&, BlockErrorFn, Half*);

}  // namespace quantd::core::quant::int4
