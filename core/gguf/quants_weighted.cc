// Weighted row quantizers: the searches llama-quantize runs when it has an
// importance matrix (ggml-quants.c quantize_row_<type>_impl, b4747), and
// IQ4_XS, whose one search serves both cases (without weights it weighs
// each value by its square).
//
// Every function takes one row of n_per_row floats and the row's per-column
// importance `qw` (n_per_row floats). The per-value weight is, for most
// types, qw[j] * sqrt(sigma2 + x[j]^2) with sigma2 a mean square over the
// super-block (K-quants, IQ4) or the whole row (Q4_0 ... Q5_1); the
// constants and the operation order below are those of the reference, as
// the output must be byte-identical. Pure functions; thread-safe; no
// allocation.
#include <cmath>
#include <cstring>

#include "quantd/core/base/half.h"
#include "quants_internal.h"

namespace quantd::core::gguf {
namespace {

// make_qx_quants with caller weights (rmse_type 1): symmetric levels in
// [-nmax, nmax), stored biased by nmax. Returns the scale.
float MakeQxQuantsWeighted(int n, int nmax, const float* x, int8_t* L, const float* qw) {
  float max = 0.0f;
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f;
  float suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = ClampInt(l, -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = qw[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = 0.0f;
    suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * x[i]);
      l = ClampInt(l, -nmax, nmax - 1);
      const float w = qw[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = NearestInt(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + ClampInt(l, -nmax, nmax - 1));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// make_qp_quants: non-negative values (sub-block scales or mins) to levels
// in [0, nmax] under weights, with a scale search and coordinate descent.
// Returns the super-block scale.
float MakeQpQuants(int n, int nmax, const float* x, uint8_t* L, const float* qw) {
  float max = 0.0f;
  for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
  if (max == 0.0f) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(NearestInt(iscale * x[i]));
  const float scale = 1.0f / iscale;
  float best_mse = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * static_cast<float>(L[i]);
    best_mse += qw[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
    const float scale_is = 1.0f / iscale_is;
    float mse = 0.0f;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale_is * x[i]);
      l = l < nmax ? l : nmax;
      const float diff = x[i] - scale_is * static_cast<float>(l);
      mse += qw[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0.0f;
  float suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = l < nmax ? l : nmax;
    L[i] = static_cast<uint8_t>(l);
    const float w = qw[i];
    sumlx += w * x[i] * static_cast<float>(L[i]);
    suml2 += w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = qw[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      float sl2 = suml2 - w * li * li;
      if (slx > 0.0f && sl2 > 0.0f) {
        int new_l = NearestInt(x[i] * sl2 / slx);
        new_l = new_l < nmax ? new_l : nmax;
        if (new_l != L[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  return sumlx / suml2;
}

float SumSquares(const float* x, int64_t n) {
  float s = 0.0f;
  for (int64_t j = 0; j < n; ++j) s += x[j] * x[j];
  return s;
}

// weight[j] = qw[j] * sqrt(sigma2 + x[j]^2), j < n.
void ImportanceWeights(const float* x, const float* qw, float sigma2, int n, float* weight) {
  for (int j = 0; j < n; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

// Legacy symmetric blocks (Q4_0: 4 bits, Q5_0: 5 bits) under weights.
template <int kBits, class Block>
void QuantizeLegacySymWeighted(const float* x, Block* y, int64_t n_per_row, const float* qw) {
  const float sigma2 = SumSquares(x, n_per_row) / static_cast<float>(n_per_row);
  float weight[kQK];
  int8_t L[kQK];
  for (int64_t ib = 0; ib < n_per_row / kQK; ++ib) {
    const float* xb = x + kQK * ib;
    ImportanceWeights(xb, qw + kQK * ib, sigma2, kQK, weight);
    const float d = MakeQxQuantsWeighted(kQK, 1 << (kBits - 1), xb, L, weight);
    y[ib].d = FloatToHalf(d);
    PackLegacyLevels<kBits>(L, &y[ib]);
  }
}

// Legacy affine blocks (Q4_1, Q5_1) under weights.
template <int kBits, class Block>
void QuantizeLegacyAffineWeighted(const float* x, Block* y, int64_t n_per_row, const float* qw) {
  const float sigma2 = SumSquares(x, n_per_row) / static_cast<float>(n_per_row);
  float weight[kQK];
  uint8_t L[kQK], Laux[kQK];
  for (int64_t ib = 0; ib < n_per_row / kQK; ++ib) {
    const float* xb = x + kQK * ib;
    ImportanceWeights(xb, qw + kQK * ib, sigma2, kQK, weight);
    float min;
    const float d =
        MakeQkx3Quants(kQK, (1 << kBits) - 1, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36);
    y[ib].d = FloatToHalf(d);
    y[ib].m = FloatToHalf(-min);
    PackLegacyLevels<kBits>(L, &y[ib]);
  }
}

// Q4_K / Q5_K: 8 sub-blocks of 32 with (scale, min), both quantized to 6
// bits by MakeQpQuants under the sub-blocks' weight sums.
template <int kBits, class Block>
void QuantizeQkMinWeighted(const float* x, Block* y, int64_t n_per_row, const float* qw) {
  constexpr int kNmax = (1 << kBits) - 1;
  uint8_t L[kQKK];
  uint8_t Laux[32];
  float weights[kQKK];
  float sw[kQKK / 32];
  float mins[kQKK / 32];
  float scales[kQKK / 32];
  for (int64_t i = 0; i < n_per_row / kQKK; ++i, x += kQKK) {
    QkMinImportance(x, qw + kQKK * i, weights, sw);
    for (int j = 0; j < kQKK / 32; ++j) {
      scales[j] = MakeQkx3Quants(32, kNmax, x + 32 * j, weights + 32 * j, L + 32 * j, &mins[j],
                                 Laux, -0.9f, 0.05f, 36);
    }
    FinishQkMinWeighted<kBits>(x, scales, mins, sw, L, &y[i]);
  }
}

// The IQ4_NL / IQ4_XS block-scale search over one super-block of `kSuper`
// values in blocks of 32 (quantize_row_iq4_nl_impl with ntry 7): each
// block's scale into scales[] (0 for an all-zero block). qw: the
// super-block's importance, or null (weights x^2); sigma2 spans the
// super-block.
template <int kSuper>
void Iq4BlockScales(const float* x, const float* qw, float* scales) {
  constexpr int kBlock = 32;
  constexpr int kNtry = 7;
  const int8_t* values = kIq4nlValues;
  float weight[kBlock];
  float sigma2 = SumSquares(x, kSuper);
  sigma2 *= 2.0f / static_cast<float>(kSuper);
  for (int ib = 0; ib < kSuper / kBlock; ++ib) {
    const float* xb = x + ib * kBlock;
    if (qw != nullptr) {
      ImportanceWeights(xb, qw + ib * kBlock, sigma2, kBlock, weight);
    } else {
      for (int j = 0; j < kBlock; ++j) weight[j] = xb[j] * xb[j];
    }
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kBlock; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    if (amax < kGroupMaxEps) {
      scales[ib] = 0.0f;
      continue;
    }
    float d = -max / static_cast<float>(values[0]);
    float id = 1.0f / d;
    float sumqx = 0.0f, sumq2 = 0.0f;
    for (int j = 0; j < kBlock; ++j) {
      const float q = static_cast<float>(values[BestIndexIq4nl(id * xb[j])]);
      const float w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    d = sumqx / sumq2;
    float best = d * sumqx;
    for (int itry = -kNtry; itry <= kNtry; ++itry) {
      id = static_cast<float>(itry + values[0]) / max;
      sumqx = 0.0f;
      sumq2 = 0.0f;
      for (int j = 0; j < kBlock; ++j) {
        const float q = static_cast<float>(values[BestIndexIq4nl(id * xb[j])]);
        const float w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
      }
      if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
  }
}

}  // namespace

void QkMinImportance(const float* x, const float* qw, float* weights, float* sw) {
  const float sigma2 = 2.0f * SumSquares(x, kQKK) / static_cast<float>(kQKK);
  for (int j = 0; j < kQKK / 32; ++j) {
    ImportanceWeights(x + 32 * j, qw + 32 * j, sigma2, 32, weights + 32 * j);
    float sumw = 0.0f;
    for (int l = 0; l < 32; ++l) sumw += weights[32 * j + l];
    sw[j] = sumw;
  }
}

template <int kBits, class Block>
void FinishQkMinWeighted(const float* x, const float* scales, const float* mins, const float* sw,
                         uint8_t* L, Block* y, SpanQuantFn span) {
  constexpr int kNmax = (1 << kBits) - 1;
  uint8_t Ls[kQKK / 32];
  uint8_t Lm[kQKK / 32];
  const float d_block = MakeQpQuants(kQKK / 32, 63, scales, Ls, sw);
  const float m_block = MakeQpQuants(kQKK / 32, 63, mins, Lm, sw);
  for (int j = 0; j < kQKK / 32; ++j) {
    uint8_t ls = Ls[j];
    uint8_t lm = Lm[j];
    if constexpr (kBits == 5) {
      ls = ls < 63 ? ls : 63;
      lm = lm < 63 ? lm : 63;
    }
    if (j < 4) {
      y->scales[j] = ls;
      y->scales[j + 4] = lm;
    } else {
      y->scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      y->scales[j - 4] = static_cast<uint8_t>(y->scales[j - 4] | ((ls >> 4) << 6));
      y->scales[j] = static_cast<uint8_t>(y->scales[j] | ((lm >> 4) << 6));
    }
  }
  y->d = FloatToHalf(d_block);
  y->dmin = FloatToHalf(m_block);
  for (int j = 0; j < kQKK / 32; ++j) {
    uint8_t sc, m;
    GetScaleMinK4(j, y->scales, &sc, &m);
    const float d = HalfToFloat(y->d) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = HalfToFloat(y->dmin) * static_cast<float>(m);
    span(x + 32 * j, dm, d, 0, kNmax, 0, L + 32 * j, 32);
  }
  if constexpr (kBits == 4) {
    uint8_t* q = y->qs;
    for (int j = 0; j < kQKK; j += 64) {
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
      q += 32;
    }
  } else {
    uint8_t* qh = y->qh;
    uint8_t* ql = y->qs;
    std::memset(qh, 0, kQKK / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int nn = 0; nn < kQKK; nn += 64) {
      for (int j = 0; j < 32; ++j) {
        const int l1 = L[nn + j];
        const int l2 = L[nn + j + 32];
        qh[j] = static_cast<uint8_t>(qh[j] | ((l1 >> 4) * m1) | ((l2 >> 4) * m2));
        ql[j] = static_cast<uint8_t>((l1 & 15) | ((l2 & 15) << 4));
      }
      m1 = static_cast<uint8_t>(m1 << 2);
      m2 = static_cast<uint8_t>(m2 << 2);
      ql += 32;
    }
  }
}
template void FinishQkMinWeighted<4, BlockQ4_K>(const float*, const float*, const float*,
                                                const float*, uint8_t*, BlockQ4_K*, SpanQuantFn);
template void FinishQkMinWeighted<5, BlockQ5_K>(const float*, const float*, const float*,
                                                const float*, uint8_t*, BlockQ5_K*, SpanQuantFn);

void Iq4Importance(const float* x, const float* qw, int n, float* weights) {
  // As Iq4BlockScales<n> computes them.
  float sigma2 = SumSquares(x, n);
  sigma2 *= 2.0f / static_cast<float>(n);
  for (int ib = 0; ib < n / 32; ++ib) {
    ImportanceWeights(x + 32 * ib, qw + 32 * ib, sigma2, 32, weights + 32 * ib);
  }
}

void FinishIQ4_XS(const float* x, const float* scales, BlockIQ4_XS* y) {
  constexpr int kBlock = 32;
  constexpr int nb = kQKK / kBlock;
  uint8_t L[kQKK];
  float max_scale = 0.0f, amax_scale = 0.0f;
  for (int ib = 0; ib < nb; ++ib) {
    const float abs_d = std::fabs(scales[ib]);
    if (abs_d > amax_scale) {
      amax_scale = abs_d;
      max_scale = scales[ib];
    }
  }
  y->scales_h = 0;
  const float d = -max_scale / 32.0f;
  y->d = FloatToHalf(d);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int ib = 0; ib < nb; ++ib) {
    int l = NearestInt(id * scales[ib]);
    l = ClampInt(l, -32, 31);
    const float dl = d * static_cast<float>(l);
    const float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
    uint8_t* Lb = L + ib * kBlock;
    const float* xb = x + ib * kBlock;
    for (int j = 0; j < kBlock; ++j) Lb[j] = static_cast<uint8_t>(BestIndexIq4nl(idl * xb[j]));
    l += 32;
    const uint8_t l_l = static_cast<uint8_t>(l & 0xF);
    const uint8_t l_h = static_cast<uint8_t>(l >> 4);
    if (ib % 2 == 0) {
      y->scales_l[ib / 2] = l_l;
    } else {
      y->scales_l[ib / 2] = static_cast<uint8_t>(y->scales_l[ib / 2] | (l_l << 4));
    }
    y->scales_h = static_cast<uint16_t>(y->scales_h | (l_h << 2 * (ib % 8)));
  }
  for (int i = 0; i < kQKK / 32; ++i) {
    for (int j = 0; j < 16; ++j) {
      y->qs[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
    }
  }
}

void QuantizeQ4_0_weighted(const float* x, BlockQ4_0* y, int64_t n_per_row, const float* qw) {
  QuantizeLegacySymWeighted<4>(x, y, n_per_row, qw);
}
void QuantizeQ5_0_weighted(const float* x, BlockQ5_0* y, int64_t n_per_row, const float* qw) {
  QuantizeLegacySymWeighted<5>(x, y, n_per_row, qw);
}
void QuantizeQ4_1_weighted(const float* x, BlockQ4_1* y, int64_t n_per_row, const float* qw) {
  QuantizeLegacyAffineWeighted<4>(x, y, n_per_row, qw);
}
void QuantizeQ5_1_weighted(const float* x, BlockQ5_1* y, int64_t n_per_row, const float* qw) {
  QuantizeLegacyAffineWeighted<5>(x, y, n_per_row, qw);
}
void QuantizeQ4_K_weighted(const float* x, BlockQ4_K* y, int64_t n_per_row, const float* qw) {
  QuantizeQkMinWeighted<4>(x, y, n_per_row, qw);
}
void QuantizeQ5_K_weighted(const float* x, BlockQ5_K* y, int64_t n_per_row, const float* qw) {
  QuantizeQkMinWeighted<5>(x, y, n_per_row, qw);
}

void QuantizeQ2_K_weighted(const float* x, BlockQ2_K* y, int64_t n_per_row, const float* qw) {
  uint8_t L[kQKK];
  uint8_t Laux[16];
  float mins[kQKK / 16];
  float scales[kQKK / 16];
  float sw[kQKK / 16];
  float weight[16];
  uint8_t Ls[kQKK / 16], Lm[kQKK / 16];
  for (int64_t i = 0; i < n_per_row / kQKK; ++i, x += kQKK) {
    std::memset(sw, 0, sizeof(sw));
    const float sigma2 = SumSquares(x, kQKK) / static_cast<float>(kQKK);
    for (int j = 0; j < kQKK / 16; ++j) {
      ImportanceWeights(x + 16 * j, qw + kQKK * i + 16 * j, sigma2, 16, weight);
      for (int l = 0; l < 16; ++l) sw[j] += weight[l];
      scales[j] =
          MakeQkx3Quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36);
    }
    const float dm0 = MakeQpQuants(kQKK / 16, 15, scales, Ls, sw);
    const float mm0 = MakeQpQuants(kQKK / 16, 15, mins, Lm, sw);
    y[i].d = FloatToHalf(dm0);
    y[i].dmin = FloatToHalf(mm0);
    const float dm = HalfToFloat(y[i].d);
    const float mm = HalfToFloat(y[i].dmin);
    for (int j = 0; j < kQKK / 16; ++j) y[i].scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    for (int j = 0; j < kQKK / 16; ++j) {
      const float d = dm * static_cast<float>(y[i].scales[j] & 0xF);
      if (d == 0.0f) continue;
      const float m = mm * static_cast<float>(y[i].scales[j] >> 4);
      QuantizeSpan_ref(x + 16 * j, m, d, 0, 3, 0, L + 16 * j, 16);
    }
    for (int j = 0; j < kQKK; j += 128) {
      for (int l = 0; l < 32; ++l) {
        y[i].qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) |
                                                  (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
      }
    }
  }
}

void QuantizeQ3_K_weighted(const float* x, BlockQ3_K* y, int64_t n_per_row, const float* qw) {
  int8_t L[kQKK];
  float scales[kQKK / 16];
  float weight[16];
  float sw[kQKK / 16];
  int8_t Ls[kQKK / 16];
  for (int64_t i = 0; i < n_per_row / kQKK; ++i, x += kQKK) {
    const float sigma2 = 2.0f * SumSquares(x, kQKK) / static_cast<float>(kQKK);
    for (int j = 0; j < kQKK / 16; ++j) {
      ImportanceWeights(x + 16 * j, qw + kQKK * i + 16 * j, sigma2, 16, weight);
      float sumw = 0.0f;
      for (int l = 0; l < 16; ++l) sumw += weight[l];
      sw[j] = sumw;
      scales[j] = MakeQxQuantsWeighted(16, 4, x + 16 * j, L + 16 * j, weight);
    }
    std::memset(y[i].scales, 0, 12);
    const float d_block = MakeQxQuantsWeighted(kQKK / 16, 32, scales, Ls, sw);
    for (int j = 0; j < kQKK / 16; ++j) {
      int l = Ls[j];
      if (j < 8) {
        y[i].scales[j] = static_cast<uint8_t>(l & 0xF);
      } else {
        y[i].scales[j - 8] = static_cast<uint8_t>(y[i].scales[j - 8] | ((l & 0xF) << 4));
      }
      l >>= 4;
      y[i].scales[j % 4 + 8] = static_cast<uint8_t>(y[i].scales[j % 4 + 8] | (l << (2 * (j / 4))));
    }
    y[i].d = FloatToHalf(d_block);
    for (int j = 0; j < kQKK / 16; ++j) {
      int sc = j < 8 ? (y[i].scales[j] & 0xF) : (y[i].scales[j - 8] >> 4);
      sc = (sc | (((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
      const float d = HalfToFloat(y[i].d) * static_cast<float>(static_cast<int8_t>(sc));
      if (d == 0.0f) continue;
      QuantizeSpan_ref(x + 16 * j, 0.0f, d, -4, 3, 4, reinterpret_cast<uint8_t*>(L + 16 * j), 16);
    }
    std::memset(y[i].hmask, 0, kQKK / 8);
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < kQKK; ++j) {
      if (L[j] > 3) {
        y[i].hmask[m] = static_cast<uint8_t>(y[i].hmask[m] | hm);
        L[j] = static_cast<int8_t>(L[j] - 4);
      }
      if (++m == kQKK / 8) {
        m = 0;
        hm = static_cast<uint8_t>(hm << 1);
      }
    }
    for (int j = 0; j < kQKK; j += 128) {
      for (int l = 0; l < 32; ++l) {
        y[i].qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) |
                                                  (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
      }
    }
  }
}

void QuantizeQ6_K_weighted(const float* x, BlockQ6_K* y, int64_t n_per_row, const float* qw) {
  int8_t L[kQKK];
  float scales[kQKK / 16];
  for (int64_t i = 0; i < n_per_row / kQKK; ++i, x += kQKK) {
    for (int ib = 0; ib < kQKK / 16; ++ib) {
      scales[ib] = MakeQxQuantsWeighted(16, 32, x + 16 * ib, L + 16 * ib, qw + kQKK * i + 16 * ib);
    }
    FinishQ6_K(x, scales, L, &y[i]);
  }
}

void QuantizeIQ4_NL_weighted(const float* x, BlockIQ4_NL* y, int64_t n_per_row, const float* qw) {
  for (int64_t ib = 0; ib < n_per_row / kQK; ++ib, x += kQK) {
    float scale;
    Iq4BlockScales<kQK>(x, qw != nullptr ? qw + kQK * ib : nullptr, &scale);
    y[ib].d = FloatToHalf(scale);
    const float id = scale != 0.0f ? 1.0f / scale : 0.0f;
    for (int j = 0; j < kQK / 2; ++j) {
      y[ib].qs[j] = static_cast<uint8_t>(BestIndexIq4nl(id * x[j]) |
                                         (BestIndexIq4nl(id * x[j + kQK / 2]) << 4));
    }
  }
}

void QuantizeIQ4_XS_weighted(const float* x, BlockIQ4_XS* y, int64_t n_per_row, const float* qw) {
  float scales[kQKK / 32];
  for (int64_t ib = 0; ib < n_per_row / kQKK; ++ib, x += kQKK) {
    Iq4BlockScales<kQKK>(x, qw != nullptr ? qw + kQKK * ib : nullptr, scales);
    FinishIQ4_XS(x, scales, &y[ib]);
  }
}

void QuantizeIQ4_XS_ref(const float* x, BlockIQ4_XS* y, int64_t n) {
  QuantizeIQ4_XS_weighted(x, y, n, nullptr);
}

}  // namespace quantd::core::gguf
