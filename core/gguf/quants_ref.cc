// Scalar reference quantizers. The arithmetic (operation order, rounding
// forms) follows llama.cpp's reference quantizers exactly, because the
// output must be byte-identical to llama-quantize:
//   - fp16 scales: round to nearest even (FloatToHalf);
//   - Q8_0: roundf (half away from zero);
//   - Q4_0/Q5_0: add 8.5 / 16.5 and truncate; Q4_1/Q5_1: add 0.5, truncate;
//   - K-quants and IQ4_NL: NearestInt (round half to even via 1.5*2^23).
#include "quants_internal.h"

#include <cfloat>
#include <cmath>
#include <cstring>

#include "quantd/core/base/half.h"

namespace quantd::core::gguf {
namespace {

// The element of largest magnitude (the first on ties) and that magnitude.
struct SignedMax {
  float max = 0.0f;   // the element itself, with its sign
  float amax = 0.0f;  // |max|
};
SignedMax FindSignedMax(const float* x, int n) {
  SignedMax m;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > m.amax) {
      m.amax = ax;
      m.max = x[i];
    }
  }
  return m;
}

// ---------------------------------------------------------------------------
// Legacy 32-element blocks: one skeleton for Q4_0, Q5_0 (symmetric, scale =
// max / -2^(bits-1)), Q4_1, Q5_1 (affine, scale = (max-min) / (2^bits-1)).
// ---------------------------------------------------------------------------
template <int kBits, bool kAffine, class Block>
void QuantizeLegacy(const float* x, Block* y, int64_t n) {
  constexpr int kMaxQ = (1 << kBits) - 1;
  const int64_t nb = n / kQK;
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK;
    float id;
    float min = 0.0f;
    if constexpr (!kAffine) {
      const float max = FindSignedMax(xb, kQK).max;
      const float d = max / static_cast<float>(-(1 << (kBits - 1)));
      id = d != 0.0f ? 1.0f / d : 0.0f;
      y[i].d = FloatToHalf(d);
    } else {
      min = FLT_MAX;
      float max = -FLT_MAX;
      for (int j = 0; j < kQK; ++j) {
        if (xb[j] < min) min = xb[j];
        if (xb[j] > max) max = xb[j];
      }
      const float d = (max - min) / static_cast<float>(kMaxQ);
      id = d != 0.0f ? 1.0f / d : 0.0f;
      y[i].d = FloatToHalf(d);
      y[i].m = FloatToHalf(min);
    }
    int q[kQK];
    for (int j = 0; j < kQK; ++j) {
      int l;
      if constexpr (!kAffine) {
        l = static_cast<int>(xb[j] * id + (static_cast<float>(1 << (kBits - 1)) + 0.5f));
        l = l < kMaxQ ? l : kMaxQ;
      } else {
        l = static_cast<int>((xb[j] - min) * id + 0.5f);
        if constexpr (kBits == 4) l = l < kMaxQ ? l : kMaxQ;
      }
      q[j] = l;
    }
    PackLegacyLevels<kBits>(q, &y[i]);
  }
}

// ---------------------------------------------------------------------------
// K-quant helpers (one definition each, shared by the K family).
// ---------------------------------------------------------------------------

// Symmetric scale search, weights x^2 (make_qx_quants, rmse_type 1). Writes
// L[i] in [0, 2*nmax). Returns the scale.
float MakeQxQuants(int n, int nmax, const float* x, int8_t* L) {
  const auto [max, amax] = FindSignedMax(x, n);
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
    const float w = x[i] * x[i];
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
      const float w = x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        int l = NearestInt(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + ClampInt(l, -nmax, nmax - 1));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Symmetric 3-bit search with coordinate descent (make_q3_quants, do_rmse).
float MakeQ3Quants(int n, int nmax, const float* x, int8_t* L) {
  const auto [max, amax] = FindSignedMax(x, n);
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f;
  float suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = ClampInt(l, -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * static_cast<float>(L[i]);
      if (slx > 0.0f) {
        float sl2 = suml2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
        int new_l = NearestInt(x[i] * sl2 / slx);
        new_l = ClampInt(new_l, -nmax, nmax - 1);
        if (new_l != L[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

}  // namespace

namespace {

// make_qkx2_quants and make_qkx3_quants (see quants_internal.h): the search
// is one; `give_up_below` also gives up on a block with max < min.
float MakeQkxQuants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                    float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                    bool use_mad, bool give_up_below) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0.0f) min = 0.0f;
  if (max == min || (give_up_below && max < min)) {
    std::memset(L, 0, static_cast<size_t>(n));
    *the_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1.0f / iscale;
  float best_error = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = NearestInt(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(ClampInt(l, 0, nmax));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * (x[i] - min));
      l = ClampInt(l, 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const float fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0.0f) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0.0f) {
        this_min = 0.0f;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0.0f;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

}  // namespace

float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                     float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                     bool use_mad) {
  return MakeQkxQuants(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad,
                       /*give_up_below=*/false);
}

float MakeQkx3Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                     float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep) {
  return MakeQkxQuants(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep,
                       /*use_mad=*/false, /*give_up_below=*/true);
}

void QuantizeQ4_0_ref(const float* x, BlockQ4_0* y, int64_t n) {
  QuantizeLegacy<4, false>(x, y, n);
}
void QuantizeQ5_0_ref(const float* x, BlockQ5_0* y, int64_t n) {
  QuantizeLegacy<5, false>(x, y, n);
}
void QuantizeQ4_1_ref(const float* x, BlockQ4_1* y, int64_t n) { QuantizeLegacy<4, true>(x, y, n); }
void QuantizeQ5_1_ref(const float* x, BlockQ5_1* y, int64_t n) { QuantizeLegacy<5, true>(x, y, n); }

void QuantizeQ8_0_ref(const float* x, BlockQ8_0* y, int64_t n) {
  const int64_t nb = n / kQK;
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = FloatToHalf(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(xb[j] * id));
  }
}

// IQ4_NL: one 32-element block, non-linear 16-level grid, scale searched
// over 2*7+1 candidates (quantize_row_iq4_nl_impl, super-block = block).
void QuantizeIQ4_NL_ref(const float* x, BlockIQ4_NL* y, int64_t n) {
  constexpr int kNtry = 7;
  const int8_t* values = kIq4nlValues;
  const int64_t nb = n / kQK;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const float* xb = x + ib * kQK;
    uint8_t L[kQK];
    float weight[kQK];
    std::memset(y[ib].qs, 0, sizeof(y[ib].qs));
    for (int j = 0; j < kQK; ++j) weight[j] = xb[j] * xb[j];
    const auto [max, amax] = FindSignedMax(xb, kQK);
    float scale = 0.0f;
    if (amax >= kGroupMaxEps) {
      float d = -max / static_cast<float>(values[0]);
      float id = 1.0f / d;
      float sumqx = 0.0f, sumq2 = 0.0f;
      for (int j = 0; j < kQK; ++j) {
        const int l = BestIndexIq4nl(id * xb[j]);
        L[j] = static_cast<uint8_t>(l);
        const float q = static_cast<float>(values[l]);
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
        for (int j = 0; j < kQK; ++j) {
          const int l = BestIndexIq4nl(id * xb[j]);
          const float q = static_cast<float>(values[l]);
          const float w = weight[j];
          sumqx += w * q * xb[j];
          sumq2 += w * q * q;
        }
        if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
          d = sumqx / sumq2;
          best = d * sumqx;
        }
      }
      scale = d;
    }
    y[ib].d = FloatToHalf(scale);
    const float id = scale != 0.0f ? 1.0f / scale : 0.0f;
    for (int j = 0; j < kQK; ++j) L[j] = static_cast<uint8_t>(BestIndexIq4nl(id * xb[j]));
    for (int j = 0; j < kQK / 2; ++j) {
      y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + kQK / 2] << 4));
    }
  }
}

void QuantizeQ2_K_ref(const float* x, BlockQ2_K* y, int64_t n) {
  const int64_t nb = n / kQKK;
  uint8_t L[kQKK];
  uint8_t Laux[16];
  float weights[16];
  float mins[kQKK / 16];
  float scales[kQKK / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    for (int j = 0; j < kQKK / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = MakeQkx2Quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f,
                                 0.1f, 15, true);
    }
    FinishQ2_K(x, scales, mins, L, &y[i]);
  }
}

void QuantizeQ3_K_ref(const float* x, BlockQ3_K* y, int64_t n) {
  const int64_t nb = n / kQKK;
  int8_t L[kQKK];
  float scales[kQKK / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    for (int j = 0; j < kQKK / 16; ++j) scales[j] = MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j);
    FinishQ3_K(x, scales, L, &y[i]);
  }
}

// Q4_K and Q5_K share one skeleton: 8 sub-blocks of 32 with (scale, min).
template <int kBits, class Block>
void QuantizeQkMin(const float* x, Block* y, int64_t n) {
  constexpr int kNmax = (1 << kBits) - 1;
  constexpr float kRmin = kBits == 4 ? -1.0f : -0.5f;
  constexpr int kNstep = kBits == 4 ? 20 : 15;
  const int64_t nb = n / kQKK;
  uint8_t L[kQKK];
  uint8_t Laux[32];
  float weights[32];
  float mins[kQKK / 32];
  float scales[kQKK / 32];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    for (int j = 0; j < kQKK / 32; ++j) {
      float sum_x2 = 0.0f;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32.0f);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] = MakeQkx2Quants(32, kNmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, kRmin,
                                 0.1f, kNstep, false);
    }
    FinishQkMin<kBits>(x, scales, mins, L, &y[i]);
  }
}

void QuantizeQ4_K_ref(const float* x, BlockQ4_K* y, int64_t n) { QuantizeQkMin<4>(x, y, n); }
void QuantizeQ5_K_ref(const float* x, BlockQ5_K* y, int64_t n) { QuantizeQkMin<5>(x, y, n); }

void QuantizeQ6_K_ref(const float* x, BlockQ6_K* y, int64_t n) {
  const int64_t nb = n / kQKK;
  int8_t L[kQKK];
  float scales[kQKK / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    for (int ib = 0; ib < kQKK / 16; ++ib)
      scales[ib] = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib);
    FinishQ6_K(x, scales, L, &y[i]);
  }
}

// ---------------------------------------------------------------------------
// Block finishers: from per-sub-block scales (and L from the search) to the
// packed block. Shared by the reference and the AVX2 kernels.
// ---------------------------------------------------------------------------
void QuantizeSpan_ref(const float* x, float dm, float d, int lo, int hi, int bias, uint8_t* L,
                      int n) {
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(ClampInt(NearestInt((x[i] + dm) / d), lo, hi) + bias);
  }
}

void FinishQ2_K(const float* x, const float* scales, const float* mins, uint8_t* L, BlockQ2_K* y,
                SpanQuantFn span) {
  constexpr float kQ4Scale = 15.0f;
  float max_scale = 0.0f;
  float max_min = 0.0f;
  for (int j = 0; j < kQKK / 16; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  if (max_scale > 0.0f) {
    const float iscale = kQ4Scale / max_scale;
    for (int j = 0; j < kQKK / 16; ++j)
      y->scales[j] = static_cast<uint8_t>(NearestInt(iscale * scales[j]));
    y->d = FloatToHalf(max_scale / kQ4Scale);
  } else {
    for (int j = 0; j < kQKK / 16; ++j) y->scales[j] = 0;
    y->d = FloatToHalf(0.0f);
  }
  if (max_min > 0.0f) {
    const float iscale = kQ4Scale / max_min;
    for (int j = 0; j < kQKK / 16; ++j) {
      const int l = NearestInt(iscale * mins[j]);
      y->scales[j] = static_cast<uint8_t>(y->scales[j] | (l << 4));
    }
    y->dmin = FloatToHalf(max_min / kQ4Scale);
  } else {
    y->dmin = FloatToHalf(0.0f);
  }
  for (int j = 0; j < kQKK / 16; ++j) {
    const float d = HalfToFloat(y->d) * static_cast<float>(y->scales[j] & 0xF);
    if (d == 0.0f) continue;
    const float dm = HalfToFloat(y->dmin) * static_cast<float>(y->scales[j] >> 4);
    span(x + 16 * j, dm, d, 0, 3, 0, L + 16 * j, 16);
  }
  for (int j = 0; j < kQKK; j += 128) {
    for (int l = 0; l < 32; ++l) {
      y->qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) |
                                              (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}

void FinishQ3_K(const float* x, const float* scales, int8_t* L, BlockQ3_K* y, SpanQuantFn span) {
  float max_scale = 0.0f;
  float amax = 0.0f;
  for (int j = 0; j < kQKK / 16; ++j) {
    const float scale = std::fabs(scales[j]);
    if (scale > amax) {
      amax = scale;
      max_scale = scales[j];
    }
  }
  std::memset(y->scales, 0, 12);
  if (max_scale != 0.0f) {
    const float iscale = -32.0f / max_scale;
    for (int j = 0; j < kQKK / 16; ++j) {
      int l = static_cast<int8_t>(NearestInt(iscale * scales[j]));
      l = ClampInt(l, -32, 31) + 32;
      if (j < 8) {
        y->scales[j] = static_cast<uint8_t>(l & 0xF);
      } else {
        y->scales[j - 8] = static_cast<uint8_t>(y->scales[j - 8] | ((l & 0xF) << 4));
      }
      l >>= 4;
      y->scales[j % 4 + 8] = static_cast<uint8_t>(y->scales[j % 4 + 8] | (l << (2 * (j / 4))));
    }
    y->d = FloatToHalf(1.0f / iscale);
  } else {
    y->d = FloatToHalf(0.0f);
  }
  for (int j = 0; j < kQKK / 16; ++j) {
    int sc = j < 8 ? (y->scales[j] & 0xF) : (y->scales[j - 8] >> 4);
    sc = (sc | (((y->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
    const float d = HalfToFloat(y->d) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    span(x + 16 * j, 0.0f, d, -4, 3, 4, reinterpret_cast<uint8_t*>(L + 16 * j), 16);
  }
  std::memset(y->hmask, 0, kQKK / 8);
  int m = 0;
  uint8_t hm = 1;
  for (int j = 0; j < kQKK; ++j) {  // levels are 0..7: bit 2 goes to hmask
    y->hmask[m] = static_cast<uint8_t>(y->hmask[m] | ((L[j] >> 2) * hm));
    L[j] = static_cast<int8_t>(L[j] & 3);
    if (++m == kQKK / 8) {
      m = 0;
      hm = static_cast<uint8_t>(hm << 1);
    }
  }
  for (int j = 0; j < kQKK; j += 128) {
    for (int l = 0; l < 32; ++l) {
      y->qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) |
                                              (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}

template <int kBits, class Block>
void FinishQkMin(const float* x, const float* scales, const float* mins, uint8_t* L, Block* y,
                 SpanQuantFn span) {
  constexpr int kNmax = (1 << kBits) - 1;
  float max_scale = 0.0f;
  float max_min = 0.0f;
  for (int j = 0; j < kQKK / 32; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < kQKK / 32; ++j) {
    uint8_t ls = static_cast<uint8_t>(NearestInt(inv_scale * scales[j]));
    uint8_t lm = static_cast<uint8_t>(NearestInt(inv_min * mins[j]));
    ls = ls < 63 ? ls : 63;
    lm = lm < 63 ? lm : 63;
    if (j < 4) {
      y->scales[j] = ls;
      y->scales[j + 4] = lm;
    } else {
      y->scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      y->scales[j - 4] = static_cast<uint8_t>(y->scales[j - 4] | ((ls >> 4) << 6));
      y->scales[j] = static_cast<uint8_t>(y->scales[j] | ((lm >> 4) << 6));
    }
  }
  y->d = FloatToHalf(max_scale / 63.0f);
  y->dmin = FloatToHalf(max_min / 63.0f);
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
      for (int j = 0; j < 32; ++j) {  // levels are 0..31: bit 4 goes to qh
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
template void FinishQkMin<4, BlockQ4_K>(const float*, const float*, const float*, uint8_t*,
                                        BlockQ4_K*, SpanQuantFn);
template void FinishQkMin<5, BlockQ5_K>(const float*, const float*, const float*, uint8_t*,
                                        BlockQ5_K*, SpanQuantFn);

bool SetQ6_KScales(const float* scales, BlockQ6_K* y) {
  float max_scale = 0.0f;
  float max_abs_scale = 0.0f;
  for (int ib = 0; ib < kQKK / 16; ++ib) {
    const float abs_scale = std::fabs(scales[ib]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(y, 0, sizeof(*y));
    y->d = FloatToHalf(0.0f);
    return false;
  }
  const float iscale = -128.0f / max_scale;
  y->d = FloatToHalf(1.0f / iscale);
  for (int ib = 0; ib < kQKK / 16; ++ib) {
    const int v = NearestInt(iscale * scales[ib]);
    y->scales[ib] = static_cast<int8_t>(v < 127 ? v : 127);
  }
  return true;
}

void PackQ6_K(const int8_t* L, BlockQ6_K* y) {
  uint8_t* ql = y->ql;
  uint8_t* qh = y->qh;
  for (int j = 0; j < kQKK; j += 128) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t q1 = L[j + l + 0] & 0xF;
      const uint8_t q2 = L[j + l + 32] & 0xF;
      const uint8_t q3 = L[j + l + 64] & 0xF;
      const uint8_t q4 = L[j + l + 96] & 0xF;
      ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                   ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

void FinishQ6_K(const float* x, const float* scales, int8_t* L, BlockQ6_K* y, SpanQuantFn span) {
  if (!SetQ6_KScales(scales, y)) return;
  for (int j = 0; j < kQKK / 16; ++j) {
    const float d = HalfToFloat(y->d) * static_cast<float>(y->scales[j]);
    if (d == 0.0f) continue;
    span(x + 16 * j, 0.0f, d, -32, 31, 32, reinterpret_cast<uint8_t*>(L + 16 * j), 16);
  }
  PackQ6_K(L, y);
}

}  // namespace quantd::core::gguf
