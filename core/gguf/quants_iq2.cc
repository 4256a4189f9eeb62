// IQ2_XXS, IQ2_XS and IQ2_S: 2-bit lattice-grid quantizers (8 values per
// grid point, signs apart) and their dequantizers, with llama.cpp's
// operation order (ggml-quants.c quantize_row_iq2_{xxs,xs,s}_impl, b4747).
#include <cstring>

#include "quantd/core/base/half.h"
#include "quants_internal.h"
#include "quants_iq.h"
#include "quants_iq_search.h"

namespace quantd::core::gguf {
namespace {

using iq::FoldSigns8;
using iq::GroupWeights;
using iq::Lattice;
using iq::LatticeTables;
using iq::ScaleCode;
using iq::SearchSpec;

constexpr int kMaxQ = 3;

// llama.cpp's make_qp_quants: levels up to nmax of x under weights w,
// refined coordinate-wise; returns the scale. IQ2_XXS gives it values made
// negative by the sign-parity fold, so negative levels occur: as in
// llama.cpp, the int level (not its wrapped uint8 copy in L) enters the
// first sums. (The K-quants' copy of this search only sees x >= 0.)
float MakeQpQuantsIq(int n, int nmax, const float* x, uint8_t* L, const float* w) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
  if (max == 0) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(NearestInt(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * static_cast<float>(L[i]);
    best_mse += w[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale_is * x[i]);
      l = l < nmax ? l : nmax;
      const float diff = x[i] - scale_is * static_cast<float>(l);
      mse += w[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = l < nmax ? l : nmax;
    L[i] = static_cast<uint8_t>(l);
    sumlx += w[i] * x[i] * static_cast<float>(l);
    suml2 += w[i] * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float wi = w[i];
      float slx = sumlx - wi * x[i] * static_cast<float>(L[i]);
      float sl2 = suml2 - wi * static_cast<float>(L[i]) * static_cast<float>(L[i]);
      if (slx > 0 && sl2 > 0) {
        int new_l = NearestInt(x[i] * sl2 / slx);
        new_l = new_l < nmax ? new_l : nmax;
        if (new_l != L[i]) {
          slx += wi * x[i] * static_cast<float>(new_l);
          sl2 += wi * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  return sumlx / suml2;
}

}  // namespace

void QuantizeIQ2_XXS_weighted(const float* x, BlockIQ2_XXS* y, int64_t n_per_row,
                              const float* quant_weights) {
  const LatticeTables& t = LatticeTables::Get(Lattice::kIq2xxs);
  const iq::SearchGroupFn search = iq::SearchGroupFor<32, 8, 2>(ActiveCpuLevel());
  constexpr SearchSpec kSpec{-6, 6, 0.1f, kMaxQ - 1, /*refine_all=*/true, /*refine_always=*/true};
  float scales[kQKK / 32];
  float weight[32], waux[32], xval[32];
  int8_t L[32] = {};
  bool on_grid[4] = {true, true, true, true};
  uint8_t block_signs[4];
  uint32_t q2[2 * (kQKK / 32)];
  for (int64_t ibl = 0; ibl < n_per_row / kQKK; ++ibl) {
    y[ibl].d = FloatToHalf(0.f);
    std::memset(q2, 0, sizeof(q2));
    float max_scale = 0;
    const float* xbl = x + kQKK * ibl;
    float sumx2 = 0;
    for (int i = 0; i < kQKK; ++i) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = sumx2 / kQKK;
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      const float* xb = xbl + 32 * ib;
      const float* qw = quant_weights + kQKK * ibl + 32 * ib;
      for (int i = 0; i < 32; ++i) weight[i] = qw[i] * std::sqrt(sigma2 + xb[i] * xb[i]);
      for (int i = 0; i < 32; ++i) waux[i] = std::sqrt(weight[i]);
      for (int k = 0; k < 4; ++k) {
        block_signs[k] = FoldSigns8(xb + 8 * k, weight + 8 * k, true, xval + 8 * k);
      }
      float max = xval[0];
      for (int i = 1; i < 32; ++i) max = max > xval[i] ? max : xval[i];
      if (max < kGroupMaxEps) {
        scales[ib] = 0;
        std::memset(L, 0, sizeof(L));
        continue;
      }
      float scale = MakeQpQuantsIq(32, kMaxQ + 1, xval, reinterpret_cast<uint8_t*>(L), weight);
      const float eff_max = scale * kMaxQ;
      scale = search(t, kSpec, xval, weight, waux, scale, static_cast<float>(2 * kMaxQ - 1),
                     eff_max, L, on_grid);
      if (scale < 0) {
        scale = -scale;
        for (int k = 0; k < 4; ++k) block_signs[k] = static_cast<uint8_t>(~block_signs[k] & 127);
      }
      for (int k = 0; k < 4; ++k) {
        const int grid_index = iq::PointIndex<8, 2>(t, L + 8 * k, kMaxQ - 1);
        q2[2 * ib + 0] |= static_cast<uint32_t>(grid_index) << (8 * k);
        q2[2 * ib + 1] |= static_cast<uint32_t>(block_signs[k]) << (7 * k);
      }
      scales[ib] = scale;
      max_scale = max_scale > scale ? max_scale : scale;
    }
    if (max_scale == 0) {
      std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
      continue;
    }
    const float d = max_scale / 31;
    y[ibl].d = FloatToHalf(d);
    const float id = 1 / d;
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      q2[2 * ib + 1] |= static_cast<uint32_t>(ScaleCode(id, scales[ib], 15)) << 28;
    }
    std::memcpy(y[ibl].qs, q2, sizeof(q2));
  }
}

// IQ2_XS and IQ2_S share the 16-value group search; they differ in the grid,
// the sign coding (7 bits + parity vs 8 bits), the weights without an
// importance matrix, the small-group threshold, the scale fudge and packing.
template <bool kIsS, class Block>
void QuantizeIQ2Group16(const float* x, Block* y, int64_t n_per_row, const float* quant_weights) {
  const LatticeTables& t = LatticeTables::Get(kIsS ? Lattice::kIq2s : Lattice::kIq2xs);
  const iq::SearchGroupFn search = iq::SearchGroupFor<16, 8, 2>(ActiveCpuLevel());
  constexpr SearchSpec kSpec{-9,
                             9,
                             0.1f,
                             kMaxQ - 1,
                             /*refine_all=*/false,
                             /*refine_always=*/false};
  constexpr float kEps = kIsS ? 1e-8f : kGroupMaxEps;
  float scales[kQKK / 16];
  float weight[16], waux[16], xval[16];
  int8_t L[16] = {};
  bool on_grid[2];
  uint8_t block_signs[2];
  for (int64_t ibl = 0; ibl < n_per_row / kQKK; ++ibl) {
    uint16_t q2[2 * (kQKK / 16)] = {};
    std::memset(&y[ibl], 0, sizeof(Block));
    y[ibl].d = FloatToHalf(0.f);
    float max_scale = 0;
    const float* xbl = x + kQKK * ibl;
    float sumx2 = 0;
    for (int i = 0; i < kQKK; ++i) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = kIsS ? 2 * sumx2 / kQKK : sumx2 / kQKK;
    for (int ib = 0; ib < kQKK / 16; ++ib) {
      const float* xb = xbl + 16 * ib;
      const float* qw = quant_weights == nullptr ? nullptr : quant_weights + kQKK * ibl + 16 * ib;
      GroupWeights(xb, qw, sigma2, 16, 0.25f, weight);
      for (int i = 0; i < 16; ++i) waux[i] = std::sqrt(weight[i]);
      for (int k = 0; k < 2; ++k) {
        block_signs[k] = FoldSigns8(xb + 8 * k, weight + 8 * k, !kIsS, xval + 8 * k);
      }
      float max = xval[0];
      for (int i = 1; i < 16; ++i) max = max > xval[i] ? max : xval[i];
      if (max < kEps) {
        scales[ib] = 0;
        if constexpr (!kIsS) std::memset(L, 0, sizeof(L));
        continue;
      }
      on_grid[0] = on_grid[1] = true;
      float scale = search(t, kSpec, xval, weight, waux, max / (2 * kMaxQ - 1),
                           static_cast<float>(2 * kMaxQ - 1), max, L, on_grid);
      if (scale < 0) {
        scale = -scale;
        for (int k = 0; k < 2; ++k) {
          block_signs[k] = static_cast<uint8_t>(kIsS ? ~block_signs[k] : ~block_signs[k] & 127);
        }
      }
      for (int k = 0; k < 2; ++k) {
        const int grid_index = iq::PointIndex<8, 2>(t, L + 8 * k, kMaxQ - 1);
        if constexpr (kIsS) {
          const int i8 = 2 * ib + k;
          y[ibl].qs[i8] = static_cast<uint8_t>(grid_index & 255);
          y[ibl].qh[i8 / 4] |= static_cast<uint8_t>((grid_index >> 8) << (2 * (i8 % 4)));
          y[ibl].qs[kQKK / 8 + i8] = block_signs[k];
        } else {
          q2[2 * ib + k] = static_cast<uint16_t>(grid_index | (block_signs[k] << 9));
        }
      }
      scales[ib] = scale;
      max_scale = max_scale > scale ? max_scale : scale;
    }
    if (max_scale == 0) {
      if constexpr (!kIsS) std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
      continue;
    }
    const float d = max_scale / 31;
    y[ibl].d = FloatToHalf(kIsS ? d * 0.9875f : d);
    const float id = 1 / d;
    for (int ib = 0; ib < kQKK / 16; ++ib) {
      const int l = ScaleCode(id, scales[ib], 15);
      if (ib % 2 == 0) {
        y[ibl].scales[ib / 2] = static_cast<uint8_t>(l);
      } else {
        y[ibl].scales[ib / 2] |= static_cast<uint8_t>(l << 4);
      }
    }
    if constexpr (!kIsS) std::memcpy(y[ibl].qs, q2, sizeof(q2));
  }
}

void QuantizeIQ2_XS_weighted(const float* x, BlockIQ2_XS* y, int64_t n_per_row,
                             const float* quant_weights) {
  QuantizeIQ2Group16<false>(x, y, n_per_row, quant_weights);
}

void QuantizeIQ2_S_weighted(const float* x, BlockIQ2_S* y, int64_t n_per_row,
                            const float* quant_weights) {
  QuantizeIQ2Group16<true>(x, y, n_per_row, quant_weights);
}

// Without an importance matrix llama.cpp has no IQ2_XXS / IQ2_XS quantizer
// (llama-quantize refuses them); these references weight every column 1.
void QuantizeIQ2_XXS_ref(const float* x, BlockIQ2_XXS* y, int64_t n) {
  float ones[kQKK];
  for (float& v : ones) v = 1.0f;
  for (int64_t b = 0; b < n / kQKK; ++b) QuantizeIQ2_XXS_weighted(x + b * kQKK, y + b, kQKK, ones);
}
void QuantizeIQ2_XS_ref(const float* x, BlockIQ2_XS* y, int64_t n) {
  float ones[kQKK];
  for (float& v : ones) v = 1.0f;
  for (int64_t b = 0; b < n / kQKK; ++b) QuantizeIQ2_XS_weighted(x + b * kQKK, y + b, kQKK, ones);
}
void QuantizeIQ2_S_ref(const float* x, BlockIQ2_S* y, int64_t n) {
  QuantizeIQ2_S_weighted(x, y, n, nullptr);
}

void DequantizeIQ2_XXS(const BlockIQ2_XXS* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      uint32_t aux[2];
      std::memcpy(aux, x[i].qs + 4 * ib, sizeof(aux));
      const float db = d * (0.5f + static_cast<float>(aux[1] >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l) {
        const uint8_t* grid = iq::Iq2xxsValues(static_cast<int>((aux[0] >> (8 * l)) & 255));
        const uint8_t signs = iq::SignByte((aux[1] >> (7 * l)) & 127);
        for (int j = 0; j < 8; ++j) {
          y[j] = db * static_cast<float>(grid[j]) * ((signs >> j) & 1 ? -1.f : 1.f);
        }
        y += 8;
      }
    }
  }
}

void DequantizeIQ2_XS(const BlockIQ2_XS* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      const float db[2] = {d * (0.5f + static_cast<float>(x[i].scales[ib] & 0xf)) * 0.25f,
                           d * (0.5f + static_cast<float>(x[i].scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l) {
        const uint16_t q = x[i].qs[4 * ib + l];
        const uint8_t* grid = iq::Iq2xsValues(q & 511);
        const uint8_t signs = iq::SignByte(q >> 9);
        for (int j = 0; j < 8; ++j) {
          y[j] = db[l / 2] * static_cast<float>(grid[j]) * ((signs >> j) & 1 ? -1.f : 1.f);
        }
        y += 8;
      }
    }
  }
}

void DequantizeIQ2_S(const BlockIQ2_S* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    const uint8_t* qs = x[i].qs;
    const uint8_t* signs = qs + kQKK / 8;
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      const float db[2] = {d * (0.5f + static_cast<float>(x[i].scales[ib] & 0xf)) * 0.25f,
                           d * (0.5f + static_cast<float>(x[i].scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l) {
        const uint8_t* grid = iq::Iq2sValues(qs[l] | ((x[i].qh[ib] << (8 - 2 * l)) & 0x300));
        for (int j = 0; j < 8; ++j) {
          y[j] = db[l / 2] * static_cast<float>(grid[j]) * ((signs[l] >> j) & 1 ? -1.f : 1.f);
        }
        y += 8;
      }
      qs += 4;
      signs += 4;
    }
  }
}

}  // namespace quantd::core::gguf
