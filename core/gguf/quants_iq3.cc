// IQ3_XXS and IQ3_S: 3-bit lattice-grid quantizers (4 values per grid point,
// signs apart) and their dequantizers, with llama.cpp's operation order
// (ggml-quants.c quantize_row_iq3_xxs_impl / quantize_row_iq3_s_impl, b4747).
#include <cstring>

#include "quantd/core/base/half.h"
#include "quants_internal.h"
#include "quants_iq.h"
#include "quants_iq_search.h"

namespace quantd::core::gguf {
namespace {

using iq::FoldSigns8;
using iq::Lattice;
using iq::LatticeTables;
using iq::ScaleCode;
using iq::SearchSpec;

constexpr int kMaxQ = 8;

}  // namespace

void QuantizeIQ3_XXS_weighted(const float* x, BlockIQ3_XXS* y, int64_t n_per_row,
                              const float* quant_weights) {
  const LatticeTables& t = LatticeTables::Get(Lattice::kIq3xxs);
  const iq::SearchGroupFn search = iq::SearchGroupFor<32, 4, 3>(ActiveCpuLevel());
  const iq::GroupWeights32Fn group_weights = iq::GroupWeights32For(ActiveCpuLevel());
  constexpr SearchSpec kSpec{-15,
                             15,
                             0.2f,
                             kMaxQ - 1,
                             /*refine_all=*/false,
                             /*refine_always=*/false};
  float scales[kQKK / 32];
  float weight[32], waux[32], xval[32];
  // Kept across the groups of a row, as llama.cpp keeps them.
  int8_t L[32] = {};
  bool on_grid[8] = {true, true, true, true, true, true, true, true};
  uint8_t block_signs[4];
  for (int64_t ibl = 0; ibl < n_per_row / kQKK; ++ibl) {
    uint8_t q3[3 * (kQKK / 8)] = {};
    uint8_t* scales_and_signs = q3 + kQKK / 4;
    y[ibl].d = FloatToHalf(0.f);
    float max_scale = 0;
    const float* xbl = x + kQKK * ibl;
    float sumx2 = 0;
    for (int i = 0; i < kQKK; ++i) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / kQKK;
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      const float* xb = xbl + 32 * ib;
      const float* qw = quant_weights == nullptr ? nullptr : quant_weights + kQKK * ibl + 32 * ib;
      group_weights(xb, qw, sigma2, weight, waux);
      for (int k = 0; k < 4; ++k) {
        block_signs[k] = FoldSigns8(xb + 8 * k, weight + 8 * k, true, xval + 8 * k);
      }
      float max = xval[0];
      for (int i = 1; i < 32; ++i) max = max > xval[i] ? max : xval[i];
      if (max < 1e-8f) {
        scales[ib] = 0;
        std::memset(L, 0, sizeof(L));
        continue;
      }
      float scale = search(t, kSpec, xval, weight, waux, max / (2 * kMaxQ - 1),
                           static_cast<float>(2 * kMaxQ - 1), max, L, on_grid);
      if (scale < 0) {
        scale = -scale;
        for (int k = 0; k < 4; ++k) block_signs[k] = static_cast<uint8_t>(~block_signs[k] & 127);
      }
      for (int k = 0; k < 8; ++k)
        q3[8 * ib + k] = static_cast<uint8_t>(iq::PointIndex<4, 3>(t, L + 4 * k, kMaxQ - 1));
      const uint32_t ss = block_signs[0] | (block_signs[1] << 7) | (block_signs[2] << 14) |
                          (static_cast<uint32_t>(block_signs[3]) << 21);
      std::memcpy(scales_and_signs + 4 * ib, &ss, 4);
      scales[ib] = scale;
      max_scale = max_scale > scale ? max_scale : scale;
    }
    if (max_scale == 0) {
      std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
      continue;
    }
    const float d = max_scale / 31;
    y[ibl].d = FloatToHalf(d * 1.0125f);
    const float id = 1 / d;
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      uint32_t ss;
      std::memcpy(&ss, scales_and_signs + 4 * ib, 4);
      ss |= static_cast<uint32_t>(ScaleCode(id, scales[ib], 15)) << 28;
      std::memcpy(scales_and_signs + 4 * ib, &ss, 4);
    }
    std::memcpy(y[ibl].qs, q3, sizeof(q3));
  }
}

void QuantizeIQ3_S_weighted(const float* x, BlockIQ3_S* y, int64_t n_per_row,
                            const float* quant_weights) {
  const LatticeTables& t = LatticeTables::Get(Lattice::kIq3s);
  const iq::SearchGroupFn search = iq::SearchGroupFor<32, 4, 3>(ActiveCpuLevel());
  const iq::GroupWeights32Fn group_weights = iq::GroupWeights32For(ActiveCpuLevel());
  constexpr SearchSpec kSpec{-9,
                             9,
                             0.2f,
                             kMaxQ - 1,
                             /*refine_all=*/true,
                             /*refine_always=*/false};
  constexpr int kBs = 32;  // values per scale
  float scales[kQKK / kBs];
  float weight[kBs], waux[kBs], xval[kBs];
  int8_t L[kBs] = {};
  bool on_grid[kBs / 4];
  uint8_t block_signs[kBs / 8];
  for (int64_t ibl = 0; ibl < n_per_row / kQKK; ++ibl) {
    std::memset(&y[ibl], 0, sizeof(BlockIQ3_S));
    y[ibl].d = FloatToHalf(0.f);
    uint8_t* qs = y[ibl].qs;
    uint8_t* qh = y[ibl].qh;
    uint8_t* signs = y[ibl].signs;
    float max_scale = 0;
    const float* xbl = x + kQKK * ibl;
    float sumx2 = 0;
    for (int i = 0; i < kQKK; ++i) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / kQKK;
    for (int ib = 0; ib < kQKK / kBs; ++ib) {
      const float* xb = xbl + kBs * ib;
      const float* qw = quant_weights == nullptr ? nullptr : quant_weights + kQKK * ibl + kBs * ib;
      group_weights(xb, qw, sigma2, weight, waux);
      for (int k = 0; k < kBs / 8; ++k) {
        block_signs[k] = FoldSigns8(xb + 8 * k, weight + 8 * k, false, xval + 8 * k);
      }
      float max = xval[0];
      for (int i = 1; i < kBs; ++i) max = max > xval[i] ? max : xval[i];
      if (max == 0) {
        scales[ib] = 0;
        continue;
      }
      for (bool& g : on_grid) g = false;
      float scale = search(t, kSpec, xval, weight, waux, max / (2 * kMaxQ - 1),
                           static_cast<float>(2 * kMaxQ - 1), max, L, on_grid);
      if (scale < 0) {
        scale = -scale;
        for (int k = 0; k < kBs / 8; ++k) block_signs[k] = static_cast<uint8_t>(~block_signs[k]);
      }
      for (int k = 0; k < kBs / 4; ++k) {
        const int grid_index = iq::PointIndex<4, 3>(t, L + 4 * k, kMaxQ - 1);
        qs[k] = static_cast<uint8_t>(grid_index & 255);
        const int j = ib * (kBs / 4) + k;
        qh[j / 8] |= static_cast<uint8_t>((grid_index >> 8) << (j % 8));
      }
      qs += kBs / 4;
      for (int k = 0; k < kBs / 8; ++k) signs[k] = block_signs[k];
      signs += kBs / 8;
      scales[ib] = scale;
      max_scale = max_scale > scale ? max_scale : scale;
    }
    if (max_scale == 0) continue;
    const float d = max_scale / 31;
    y[ibl].d = FloatToHalf(d * 1.033f);
    const float id = 1 / d;
    for (int ib = 0; ib < kQKK / kBs; ib += 2) {
      const int l1 = ScaleCode(id, scales[ib + 0], 15);
      const int l2 = ScaleCode(id, scales[ib + 1], 15);
      y[ibl].scales[ib / 2] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
  }
}

void QuantizeIQ3_XXS_ref(const float* x, BlockIQ3_XXS* y, int64_t n) {
  QuantizeIQ3_XXS_weighted(x, y, n, nullptr);
}
void QuantizeIQ3_S_ref(const float* x, BlockIQ3_S* y, int64_t n) {
  QuantizeIQ3_S_weighted(x, y, n, nullptr);
}

void DequantizeIQ3_XXS(const BlockIQ3_XXS* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    const uint8_t* qs = x[i].qs;
    const uint8_t* scales_and_signs = qs + kQKK / 4;
    for (int ib = 0; ib < kQKK / 32; ++ib) {
      uint32_t aux;
      std::memcpy(&aux, scales_and_signs + 4 * ib, sizeof(aux));
      const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l) {
        const uint8_t signs = iq::SignByte((aux >> (7 * l)) & 127);
        const uint8_t* g1 = iq::Iq3xxsValues(qs[2 * l + 0]);
        const uint8_t* g2 = iq::Iq3xxsValues(qs[2 * l + 1]);
        for (int j = 0; j < 4; ++j) {
          y[j + 0] = db * static_cast<float>(g1[j]) * ((signs >> j) & 1 ? -1.f : 1.f);
          y[j + 4] = db * static_cast<float>(g2[j]) * ((signs >> (j + 4)) & 1 ? -1.f : 1.f);
        }
        y += 8;
      }
      qs += 8;
    }
  }
}

void DequantizeIQ3_S(const BlockIQ3_S* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = HalfToFloat(x[i].d);
    const uint8_t* qs = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const uint8_t* signs = x[i].signs;
    for (int ib = 0; ib < kQKK / 32; ib += 2) {
      const float db[2] = {d * static_cast<float>(1 + 2 * (x[i].scales[ib / 2] & 0xf)),
                           d * static_cast<float>(1 + 2 * (x[i].scales[ib / 2] >> 4))};
      for (int half = 0; half < 2; ++half) {
        for (int l = 0; l < 4; ++l) {
          const uint8_t* g1 = iq::Iq3sValues(qs[2 * l + 0] | ((qh[half] << (8 - 2 * l)) & 256));
          const uint8_t* g2 = iq::Iq3sValues(qs[2 * l + 1] | ((qh[half] << (7 - 2 * l)) & 256));
          for (int j = 0; j < 4; ++j) {
            y[j + 0] = db[half] * static_cast<float>(g1[j]) * ((signs[l] >> j) & 1 ? -1.f : 1.f);
            y[j + 4] =
                db[half] * static_cast<float>(g2[j]) * ((signs[l] >> (j + 4)) & 1 ? -1.f : 1.f);
          }
          y += 8;
        }
        qs += 8;
        signs += 4;
      }
      qh += 2;
    }
  }
}

}  // namespace quantd::core::gguf
