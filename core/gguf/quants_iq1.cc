// IQ1_S and IQ1_M: 1.5625 / 1.75 bits-per-weight lattice-grid quantizers
// (values -1, 0, 1 shifted by +-1/8, 8 per grid point) and their
// dequantizers, with llama.cpp's operation order (ggml-quants.c
// quantize_row_iq1_s_impl / quantize_row_iq1_m_impl, b4747).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "quantd/core/base/half.h"
#include "quants_internal.h"
#include "quants_iq.h"
#include "quants_iq_tables.h"

namespace quantd::core::gguf {
namespace {

using iq::Lattice;
using iq::LatticeTables;

constexpr float kIq1Delta = 0.125f;
constexpr float kXp[3] = {-1 + kIq1Delta, kIq1Delta, 1 + kIq1Delta};
constexpr float kXm[3] = {-1 - kIq1Delta, -kIq1Delta, 1 - kIq1Delta};

// The neighbour of a non-grid level vector closest to xval at `scale`, the
// levels 0..2 standing for xx[level]; writes its levels to L.
int BestNeighbourIq1(const LatticeTables& t, int map_value, const float* xval, const float* w,
                     float scale, const float* xx, int8_t* L) {
  const uint16_t* nb = t.Neighbours(map_value);
  const int n = nb[0];
  float best_score = FLT_MAX;
  int best = nb[1];  // llama.cpp asserts a finite distance; keep a valid point regardless
  for (int j = 1; j <= n; ++j) {
    const int8_t* pg = t.Point(nb[j]);
    float d2 = 0;
    for (int i = 0; i < 8; ++i) {
      const float q = xx[(pg[i] - 1) / 2];
      const float diff = scale * q - xval[i];
      d2 += w[i] * diff * diff;
    }
    if (d2 < best_score) {
      best_score = d2;
      best = nb[j];
    }
  }
  const int8_t* pg = t.Point(best);
  for (int i = 0; i < 8; ++i) L[i] = static_cast<int8_t>((pg[i] - 1) / 2);
  return best;
}

// Indices of xb[0..n) in ascending order of value, equal values in index
// order (llama.cpp sorts (value, index) pairs by value with glibc's qsort,
// a stable merge sort for arrays this small).
template <int kN>
void SortedOrder(const float* xb, int* idx) {
  for (int j = 0; j < kN; ++j) idx[j] = j;
  std::stable_sort(idx, idx + kN, [xb](int a, int b) { return xb[a] < xb[b]; });
}

// Grid point of L[8k..8k+8) or its best neighbour (which rewrites L).
int PointOrNeighbour(const LatticeTables& t, const float* xb, const float* w, float scale,
                     const float* xx, int8_t* L, bool* on_grid) {
  uint32_t u = 0;
  for (int j = 0; j < 8; ++j) u |= static_cast<uint32_t>(L[j]) << (2 * j);
  const int m = t.Map(u);
  if (m >= 0) return m;
  *on_grid = false;
  return BestNeighbourIq1(t, m, xb, w, scale, xx, L);
}

}  // namespace

void QuantizeIQ1_S_weighted(const float* x, BlockIQ1_S* y, int64_t n_per_row,
                            const float* quant_weights) {
  const LatticeTables& t = LatticeTables::Get(Lattice::kIq1s);
  constexpr int kBs = 32;
  float scales[kQKK / kBs];
  float weight[kBs];
  float sumx[kBs + 1], sumw[kBs + 1];
  int idx[kBs];
  int8_t L[kBs];
  uint16_t index[kBs / 8];
  int8_t shifts[kQKK / kBs] = {};  // kept across blocks, as llama.cpp keeps them
  for (int64_t ibl = 0; ibl < n_per_row / kQKK; ++ibl) {
    y[ibl].d = FloatToHalf(0.f);
    std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
    std::memset(y[ibl].qh, 0, sizeof(y[ibl].qh));
    float max_scale = 0;
    const float* xbl = x + kQKK * ibl;
    float sumx2 = 0;
    for (int i = 0; i < kQKK; ++i) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / kQKK;
    for (int ib = 0; ib < kQKK / kBs; ++ib) {
      const float* xb = xbl + kBs * ib;
      const float* qw = quant_weights + kQKK * ibl + kBs * ib;
      for (int i = 0; i < kBs; ++i) weight[i] = qw[i] * std::sqrt(sigma2 + xb[i] * xb[i]);
      float max = std::fabs(xb[0]);
      for (int i = 1; i < kBs; ++i) max = std::max(max, std::fabs(xb[i]));
      if (max < 1e-12f) {
        scales[ib] = 0;
        std::memset(L, 1, sizeof(L));
        continue;
      }
      // Exhaustive search over the two boundaries splitting the sorted
      // values into -1 / 0 / +1, with prefix sums of w*x and w.
      SortedOrder<kBs>(xb, idx);
      sumx[0] = sumw[0] = 0;
      for (int j = 0; j < kBs; ++j) {
        const int i = idx[j];
        sumx[j + 1] = sumx[j] + weight[i] * xb[i];
        sumw[j + 1] = sumw[j] + weight[i];
      }
      float best_score = -FLT_MIN, scale = max;
      int besti1 = -1, besti2 = -1, best_shift = 0;
      for (int i1 = 0; i1 <= kBs; ++i1) {
        for (int i2 = i1; i2 <= kBs; ++i2) {
          const float sx0 = sumx[i1] - sumx[0], sx1 = sumx[i2] - sumx[i1],
                      sx2 = sumx[kBs] - sumx[i2];
          const float sw0 = sumw[i1] - sumw[0], sw1 = sumw[i2] - sumw[i1],
                      sw2 = sumw[kBs] - sumw[i2];
          float sumqx = sx0 * kXp[0] + sx1 * kXp[1] + sx2 * kXp[2];
          float sumq2 = sw0 * kXp[0] * kXp[0] + sw1 * kXp[1] * kXp[1] + sw2 * kXp[2] * kXp[2];
          if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
            scale = sumqx / sumq2;
            best_score = scale * sumqx;
            besti1 = i1;
            besti2 = i2;
            best_shift = 1;
          }
          sumqx = sx0 * kXm[0] + sx1 * kXm[1] + sx2 * kXm[2];
          sumq2 = sw0 * kXm[0] * kXm[0] + sw1 * kXm[1] * kXm[1] + sw2 * kXm[2] * kXm[2];
          if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
            scale = sumqx / sumq2;
            best_score = scale * sumqx;
            besti1 = i1;
            besti2 = i2;
            best_shift = -1;
          }
        }
      }
      if (besti1 < 0) {  // llama.cpp asserts; only all-zero weights get here
        besti1 = besti2 = 0;
        best_shift = 1;
      }
      for (int j = 0; j < besti1; ++j) L[idx[j]] = 0;
      for (int j = besti1; j < besti2; ++j) L[idx[j]] = 1;
      for (int j = besti2; j < kBs; ++j) L[idx[j]] = 2;
      if (scale < 0) {
        for (int j = 0; j < kBs; ++j) L[j] = static_cast<int8_t>(2 - L[j]);
        scale = -scale;
        best_shift = -best_shift;
      }
      bool all_on_grid = true;
      const float* xx = best_shift == 1 ? kXp : kXm;
      for (int k = 0; k < kBs / 8; ++k) {
        index[k] = static_cast<uint16_t>(
            PointOrNeighbour(t, xb + 8 * k, weight + 8 * k, scale, xx, L + 8 * k, &all_on_grid));
      }
      if (!all_on_grid) {
        float sumqx = 0, sumq2 = 0;
        for (int k = 0; k < kBs / 8; ++k) {
          const int8_t* pg = t.Point(index[k]);
          for (int j = 0; j < 8; ++j) {
            const float w = weight[8 * k + j];
            const float q = xx[(pg[j] - 1) / 2];
            sumqx += w * q * xb[8 * k + j];
            sumq2 += w * q * q;
          }
        }
        if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
      }
      uint16_t h = 0;
      for (int k = 0; k < kBs / 8; ++k) {
        y[ibl].qs[(kBs / 8) * ib + k] = static_cast<uint8_t>(index[k] & 255);
        h = static_cast<uint16_t>(h | ((index[k] >> 8) << (3 * k)));
      }
      y[ibl].qh[ib] = h;
      scales[ib] = scale;
      shifts[ib] = static_cast<int8_t>(best_shift);
      max_scale = std::max(max_scale, scale);
    }
    if (max_scale == 0) continue;
    const float d = max_scale / 15;
    y[ibl].d = FloatToHalf(d * 1.125f);
    const float id = 1 / d;
    for (int ib = 0; ib < kQKK / kBs; ++ib) {
      int l = ClampInt(NearestInt(0.5f * (id * scales[ib] - 1)), 0, 7);
      if (shifts[ib] == -1) l |= 8;
      y[ibl].qh[ib] = static_cast<uint16_t>(y[ibl].qh[ib] | (l << 12));
    }
  }
}

void QuantizeIQ1_M_weighted(const float* x, BlockIQ1_M* y, int64_t n_per_row,
                            const float* quant_weights) {
  const LatticeTables& t = LatticeTables::Get(Lattice::kIq1s);
  constexpr int kBs = 16;
  constexpr uint8_t kMasks[4] = {0x00, 0x80, 0x08, 0x88};
  float scales[kQKK / kBs];
  float weight[kBs];
  int idx[kBs];
  int8_t L[kBs];
  uint16_t index[kBs / 8];
  int8_t shifts[kQKK / kBs] = {};  // kept across blocks, as llama.cpp keeps them
  // Per split variant k (bit 1: first half shifted down, bit 0: second half).
  const auto xx_of = [](int best_k, int half) -> const float* {
    return half == 0 ? (best_k < 2 ? kXp : kXm) : (best_k % 2 == 0 ? kXp : kXm);
  };
  for (int64_t ibl = 0; ibl < n_per_row / kQKK; ++ibl) {
    std::memset(&y[ibl], 0, sizeof(BlockIQ1_M));
    float max_scale = 0;
    const float* xbl = x + kQKK * ibl;
    float sumx2 = 0;
    for (int i = 0; i < kQKK; ++i) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / kQKK;
    for (int ib = 0; ib < kQKK / kBs; ++ib) {
      const float* xb = xbl + kBs * ib;
      if (quant_weights != nullptr) {
        const float* qw = quant_weights + kQKK * ibl + kBs * ib;
        for (int i = 0; i < kBs; ++i) weight[i] = qw[i] * std::sqrt(sigma2 + xb[i] * xb[i]);
      } else {
        for (int i = 0; i < kBs; ++i) weight[i] = xb[i] * xb[i];
      }
      float max = std::fabs(xb[0]);
      for (int i = 1; i < kBs; ++i) max = std::max(max, std::fabs(xb[i]));
      if (max < 1e-7f) {
        scales[ib] = 0;
        std::memset(L, 1, sizeof(L));
        continue;
      }
      SortedOrder<kBs>(xb, idx);
      // The four shift variants accumulate in llama.cpp's order: for each
      // split (i1, i2), the sorted values j = 0..15 in turn, value j at
      // level 0 (j < i1), 1 (j < i2) or 2, into each variant's sums. Variant
      // k uses x_m for the first half of the group when k >= 2 and for the
      // second half when k is odd. The terms depend only on (j, level, k),
      // and sums over a common prefix of the sequence are the same floats,
      // so each split starts from the shared prefix (levels 0 then 1) and
      // adds its own tail (level 2) in order: the same additions, fewer.
      float tqx[kBs][3][4], tq2[kBs][3][4];  // [sorted j][level][variant]
      for (int j = 0; j < kBs; ++j) {
        const int i = idx[j];
        const bool first = i < kBs / 2;
        for (int lv = 0; lv < 3; ++lv) {
          const float ap = weight[i] * kXp[lv] * xb[i], am = weight[i] * kXm[lv] * xb[i];
          const float bp = weight[i] * kXp[lv] * kXp[lv], bm = weight[i] * kXm[lv] * kXm[lv];
          for (int k = 0; k < 4; ++k) {
            const bool minus = first ? k >= 2 : (k % 2) == 1;
            tqx[j][lv][k] = minus ? am : ap;
            tq2[j][lv][k] = minus ? bm : bp;
          }
        }
      }
      float best_score = -FLT_MIN, scale = max;
      int besti1 = -1, besti2 = -1, best_k = -1;
      float pqx[4] = {0, 0, 0, 0}, pq2[4] = {0, 0, 0, 0};  // j < i1 at level 0
      for (int i1 = 0; i1 <= kBs; ++i1) {
        if (i1 > 0) {
          for (int k = 0; k < 4; ++k) {
            pqx[k] += tqx[i1 - 1][0][k];
            pq2[k] += tq2[i1 - 1][0][k];
          }
        }
        float mqx[4], mq2[4];  // then i1 <= j < i2 at level 1
        for (int k = 0; k < 4; ++k) {
          mqx[k] = pqx[k];
          mq2[k] = pq2[k];
        }
        for (int i2 = i1; i2 <= kBs; ++i2) {
          if (i2 > i1) {
            for (int k = 0; k < 4; ++k) {
              mqx[k] += tqx[i2 - 1][1][k];
              mq2[k] += tq2[i2 - 1][1][k];
            }
          }
          float sumqx[4], sumq2[4];
          for (int k = 0; k < 4; ++k) {
            sumqx[k] = mqx[k];
            sumq2[k] = mq2[k];
          }
          for (int j = i2; j < kBs; ++j) {
            for (int k = 0; k < 4; ++k) {
              sumqx[k] += tqx[j][2][k];
              sumq2[k] += tq2[j][2][k];
            }
          }
          for (int k = 0; k < 4; ++k) {
            if (sumq2[k] > 0 && sumqx[k] * sumqx[k] > best_score * sumq2[k]) {
              scale = sumqx[k] / sumq2[k];
              best_score = scale * sumqx[k];
              besti1 = i1;
              besti2 = i2;
              best_k = k;
            }
          }
        }
      }
      if (besti1 < 0) {  // llama.cpp asserts; only all-zero weights get here
        besti1 = besti2 = 0;
        best_k = 0;
      }
      for (int j = 0; j < besti1; ++j) L[idx[j]] = 0;
      for (int j = besti1; j < besti2; ++j) L[idx[j]] = 1;
      for (int j = besti2; j < kBs; ++j) L[idx[j]] = 2;
      if (scale < 0) {
        for (int j = 0; j < kBs; ++j) L[j] = static_cast<int8_t>(2 - L[j]);
        scale = -scale;
        best_k = 3 - best_k;
      }
      bool all_on_grid = true;
      for (int k = 0; k < kBs / 8; ++k) {
        index[k] = static_cast<uint16_t>(PointOrNeighbour(
            t, xb + 8 * k, weight + 8 * k, scale, xx_of(best_k, k), L + 8 * k, &all_on_grid));
      }
      if (!all_on_grid) {
        float sumqx_f = 0, sumq2_f = 0;
        for (int k = 0; k < kBs / 8; ++k) {
          const float* xx = xx_of(best_k, k);
          const int8_t* pg = t.Point(index[k]);
          for (int j = 0; j < 8; ++j) {
            const float w = weight[8 * k + j];
            const float q = xx[(pg[j] - 1) / 2];
            sumqx_f += w * q * xb[8 * k + j];
            sumq2_f += w * q * q;
          }
        }
        if (sumqx_f > 0 && sumq2_f > 0) scale = sumqx_f / sumq2_f;
      }
      y[ibl].qs[2 * ib + 0] = static_cast<uint8_t>(index[0] & 255);
      y[ibl].qs[2 * ib + 1] = static_cast<uint8_t>(index[1] & 255);
      y[ibl].qh[ib] = static_cast<uint8_t>((index[0] >> 8) | ((index[1] >> 8) << 4));
      scales[ib] = scale;
      shifts[ib] = static_cast<int8_t>(best_k);
      max_scale = std::max(max_scale, scale);
    }
    if (max_scale == 0) continue;
    uint16_t sc[4] = {0, 0, 0, 0};
    float d = max_scale / 15;
    const float id = 1 / d;
    float sumqx_f = 0, sumq2_f = 0;
    for (int ib = 0; ib < kQKK / kBs; ++ib) {
      const int l = ClampInt(NearestInt(0.5f * (id * scales[ib + 0] - 1)), 0, 7);
      sc[ib / 4] = static_cast<uint16_t>(sc[ib / 4] | (l << (3 * (ib % 4))));
      y[ibl].qh[ib] |= kMasks[shifts[ib]];
      const float* xb = xbl + kBs * ib;
      if (quant_weights != nullptr) {
        const float* qw = quant_weights + kQKK * ibl + kBs * ib;
        for (int i = 0; i < kBs; ++i) weight[i] = qw[i] * std::sqrt(sigma2 + xb[i] * xb[i]);
      } else {
        for (int i = 0; i < kBs; ++i) weight[i] = xb[i] * xb[i];
      }
      for (int k = 0; k < kBs / 8; ++k) {
        const float* xx = xx_of(shifts[ib], k);
        const int8_t* pg =
            t.Point(y[ibl].qs[2 * ib + k] + ((y[ibl].qh[ib] << (8 - 4 * k)) & 0x700));
        for (int j = 0; j < 8; ++j) {
          const float w = weight[8 * k + j];
          const float q = xx[(pg[j] - 1) / 2] * static_cast<float>(2 * l + 1);
          sumqx_f += w * q * xb[8 * k + j];
          sumq2_f += w * q * q;
        }
      }
    }
    if (sumq2_f > 0) d = sumqx_f / sumq2_f;
    const uint16_t s = FloatToHalf(d * 1.1125f);
    sc[0] = static_cast<uint16_t>(sc[0] | ((s & 0x000f) << 12));
    sc[1] = static_cast<uint16_t>(sc[1] | ((s & 0x00f0) << 8));
    sc[2] = static_cast<uint16_t>(sc[2] | ((s & 0x0f00) << 4));
    sc[3] = static_cast<uint16_t>(sc[3] | (s & 0xf000));
    std::memcpy(y[ibl].scales, sc, sizeof(sc));
  }
}

// Without an importance matrix llama.cpp has no IQ1_S quantizer
// (llama-quantize refuses it); this reference weighs every column 1.
void QuantizeIQ1_S_ref(const float* x, BlockIQ1_S* y, int64_t n) {
  float ones[kQKK];
  for (float& v : ones) v = 1.0f;
  for (int64_t b = 0; b < n / kQKK; ++b) QuantizeIQ1_S_weighted(x + b * kQKK, y + b, kQKK, ones);
}
void QuantizeIQ1_M_ref(const float* x, BlockIQ1_M* y, int64_t n) {
  QuantizeIQ1_M_weighted(x, y, n, nullptr);
}

void DequantizeIQ1_S(const BlockIQ1_S* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      const uint16_t qh = x[i].qh[ib];
      const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -kIq1Delta : kIq1Delta;
      for (int l = 0; l < 4; ++l) {
        const int8_t* grid = iq::Iq1sValues(qs[l] | (((qh >> (3 * l)) & 7) << 8));
        for (int j = 0; j < 8; ++j) y[j] = dl * (static_cast<float>(grid[j]) + delta);
        y += 8;
      }
      qs += 4;
    }
  }
}

void DequantizeIQ1_M(const BlockIQ1_M* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    uint16_t sc[4];
    std::memcpy(sc, x[i].scales, sizeof(sc));
    const uint16_t s = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
                                             ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
    const float d = HalfToFloat(s);
    const uint8_t* qs = x[i].qs;
    const uint8_t* qh = x[i].qh;
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      const float dl1 = d * static_cast<float>(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 0x7) + 1);
      const float dl2 = d * static_cast<float>(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 0x7) + 1);
      const int idx[4] = {qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700),
                          qs[2] | ((qh[1] << 8) & 0x700), qs[3] | ((qh[1] << 4) & 0x700)};
      const float delta[4] = {
          qh[0] & 0x08 ? -kIq1Delta : kIq1Delta, qh[0] & 0x80 ? -kIq1Delta : kIq1Delta,
          qh[1] & 0x08 ? -kIq1Delta : kIq1Delta, qh[1] & 0x80 ? -kIq1Delta : kIq1Delta};
      for (int l = 0; l < 4; ++l) {
        const int8_t* grid = iq::Iq1sValues(idx[l]);
        const float dl = l < 2 ? dl1 : dl2;
        for (int j = 0; j < 8; ++j) y[j] = dl * (static_cast<float>(grid[j]) + delta[l]);
        y += 8;
      }
      qs += 4;
      qh += 2;
    }
  }
}

}  // namespace quantd::core::gguf
