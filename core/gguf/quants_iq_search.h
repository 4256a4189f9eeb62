// The scale-and-grid search shared by the IQ2 and IQ3 quantizers
// (quants_iq2.cc, quants_iq3.cc), with llama.cpp's operation order
// (ggml-quants.c, quantize_row_iq2_*/iq3_*_impl, b4747) so the chosen points
// and scales are the same to the bit. Internal to core/gguf. Pure functions
// over caller-owned arrays; thread-safe.
#ifndef QUANTD_CORE_GGUF_QUANTS_IQ_SEARCH_H_
#define QUANTD_CORE_GGUF_QUANTS_IQ_SEARCH_H_

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "quantd/core/base/cpu_features.h"
#include "quants_internal.h"
#include "quants_iq_tables.h"

namespace quantd::core::gguf::iq {

// The nearest of the points idx[0..n) of a lattice with kDims coordinates
// to x under weights w at `scale`: the list position of the first point
// whose distance sum over i (in order) of w[i] * (scale * q[i] - x[i])^2 is
// the smallest below FLT_MAX, or 0 when none is (llama.cpp asserts there).
// `points`: the lattice's float coordinates; `slots`: the list's rows
// (LatticeTables::NeighbourSlots), which vector variants read instead.
using NearestNeighbourFn = int (*)(const float* points, const uint16_t* idx, const uint8_t* slots,
                                   int n, const float* x, const float* w, float scale);

template <int kDims>
int NearestNeighbour_ref(const float* points, const uint16_t* idx, const uint8_t* /*slots*/, int n,
                         const float* x, const float* w, float scale) {
  float best_d2 = FLT_MAX;
  int best = 0;
  for (int j = 0; j < n; ++j) {
    const float* pg = points + static_cast<size_t>(idx[j]) * kDims;
    float d = 0;
    for (int i = 0; i < kDims; ++i) {
      const float diff = scale * pg[i] - x[i];
      d += w[i] * diff * diff;
    }
    if (d < best_d2) {
      best_d2 = d;
      best = j;
    }
  }
  return best;
}

namespace internal {
// AVX2 variants (quants_iq_avx2.cc): eight points per step, one per lane.
// Each coordinate's term w[i] * (scale * q - x[i])^2 depends only on the
// coordinate and its level, so the terms of every level are computed once
// per call with the reference's operations and looked up per point; the
// lookups are summed in the reference's order, so distances are the same
// to the bit. REQUIRES: AVX2.
int NearestNeighbour4_avx2(const float* points, const uint16_t* idx, const uint8_t* slots, int n,
                           const float* x, const float* w, float scale);
int NearestNeighbour8_avx2(const float* points, const uint16_t* idx, const uint8_t* slots, int n,
                           const float* x, const float* w, float scale);
}  // namespace internal

// The kernel for `level` (cpu_features.h): the best at or below it.
template <int kDims>
inline NearestNeighbourFn NearestNeighbourFor(CpuLevel level) {
  if (level >= CpuLevel::kAvx2) {
    return kDims == 4 ? internal::NearestNeighbour4_avx2 : internal::NearestNeighbour8_avx2;
  }
  return NearestNeighbour_ref<kDims>;
}

// Bound on a neighbour list's length (a lattice's point count).
inline constexpr int kMaxNeighbours = 2048;

// Writes the levels of the neighbour of a non-grid vector closest to xval
// under weights w at `scale` (first on ties) to L; returns its index.
template <int kDims>
inline int BestNeighbour(const LatticeTables& t, NearestNeighbourFn nearest, int map_value,
                         const float* xval, const float* w, float scale, int8_t* L) {
  const uint16_t* nb = t.Neighbours(map_value);
  const int best = nb[1 + nearest(t.PointsAsFloat(), nb + 1, t.NeighbourSlots(map_value), nb[0],
                                  xval, w, scale)];
  const int8_t* pg = t.Point(best);
  for (int i = 0; i < kDims; ++i) L[i] = static_cast<int8_t>((pg[i] - 1) / 2);
  return best;
}

// Rounds xval[0..kDims) at inverse scale `id` to levels 0..max_level, packs
// them, and replaces an off-grid vector by its best neighbour at `scale`.
// Returns the point index; *on_grid says whether the rounding hit a point.
template <int kDims, int kBits>
inline int RoundToGrid(const LatticeTables& t, NearestNeighbourFn dist, const float* xval,
                       const float* waux, float id, float scale, int max_level, int8_t* L,
                       bool* on_grid) {
  uint32_t u = 0;
  for (int i = 0; i < kDims; ++i) {
    const int l = ClampInt(NearestInt(0.5f * (id * xval[i] - 1)), 0, max_level);
    L[i] = static_cast<int8_t>(l);
    u |= static_cast<uint32_t>(l) << (kBits * i);
  }
  const int m = t.Map(u);
  *on_grid = m >= 0;
  if (m >= 0) return m;
  return BestNeighbour<kDims>(t, dist, m, xval, waux, scale, L);
}

// The point index of the levels L[0..kDims) a search ended with. They are a
// grid point for finite input; for non-finite input (where llama.cpp
// aborts) levels are clamped and an off-grid vector gives its first
// neighbour, so the output is defined.
template <int kDims, int kBits>
inline int PointIndex(const LatticeTables& t, const int8_t* L, int max_level) {
  uint32_t u = 0;
  for (int i = 0; i < kDims; ++i) {
    u |= static_cast<uint32_t>(ClampInt(L[i], 0, max_level)) << (kBits * i);
  }
  const int m = t.Map(u);
  return m >= 0 ? m : t.Neighbours(m)[1];
}

// How a type's search ends (see SearchGroup).
struct SearchSpec {
  int is_lo, is_hi;    // candidate steps
  float step;          // candidate spacing around `base`
  int max_level;       // kMaxQ - 1
  bool refine_all;     // the refinement pass revisits every sub-group (else only off-grid ones)
  bool refine_always;  // refine even when every sub-group is on the grid
};

// The end of SearchGroup, after the candidates chose `scale`, L and
// is_on_grid: re-rounds at the chosen scale (per `spec`) and refits.
// Returns the scale.
template <int kGroup, int kDims, int kBits>
inline float RefineGroup(const LatticeTables& t, NearestNeighbourFn dist, const SearchSpec& spec,
                         const float* xval, const float* weight, const float* waux, float scale,
                         int8_t* L, const bool* is_on_grid) {
  constexpr int kSub = kGroup / kDims;
  bool any_off = false;
  for (int k = 0; k < kSub; ++k) any_off |= !is_on_grid[k];
  if ((spec.refine_always || any_off) && scale > 0) {
    const float id = 1 / scale;
    for (int k = 0; k < kSub; ++k) {
      if (!spec.refine_all && is_on_grid[k]) continue;
      bool on;
      RoundToGrid<kDims, kBits>(t, dist, xval + kDims * k, waux + kDims * k, id, scale,
                                spec.max_level, L + kDims * k, &on);
    }
    float sumqx = 0, sumq2 = 0;
    for (int i = 0; i < kGroup; ++i) {
      const float w = weight[i];
      const float q = static_cast<float>(2 * L[i] + 1);
      sumqx += w * xval[i] * q;
      sumq2 += w * q * q;
    }
    if (sumq2 > 0) scale = sumqx / sumq2;
  }
  return scale;
}

// Searches the scale of one group of kGroup values (sub-groups of kDims):
// for each candidate inverse scale id = (base + is * step) / denom, rounds
// to the grid and keeps the best weighted fit sumqx^2 / sumq2; then
// re-rounds at the kept scale (per `spec`) and refits. L and is_on_grid are
// the caller's state (llama.cpp keeps them across groups of a row, and so do
// the callers). Returns the scale; L holds the levels of the chosen points.
template <int kGroup, int kDims, int kBits>
inline float SearchGroup(const LatticeTables& t, NearestNeighbourFn dist, const SearchSpec& spec,
                         const float* xval, const float* weight, const float* waux, float scale,
                         float base, float denom, int8_t* L, bool* is_on_grid) {
  constexpr int kSub = kGroup / kDims;
  int8_t Laux[kGroup];
  bool on_aux[kSub];
  float best = 0;
  for (int is = spec.is_lo; is <= spec.is_hi; ++is) {
    const float id = (base + static_cast<float>(is) * spec.step) / denom;
    const float this_scale = 1 / id;
    for (int k = 0; k < kSub; ++k) {
      RoundToGrid<kDims, kBits>(t, dist, xval + kDims * k, waux + kDims * k, id, this_scale,
                                spec.max_level, Laux + kDims * k, &on_aux[k]);
    }
    float sumqx = 0, sumq2 = 0;
    for (int i = 0; i < kGroup; ++i) {
      const float w = weight[i];
      const float q = static_cast<float>(2 * Laux[i] + 1);
      sumqx += w * xval[i] * q;
      sumq2 += w * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      scale = sumqx / sumq2;
      best = scale * sumqx;
      for (int i = 0; i < kGroup; ++i) L[i] = Laux[i];
      for (int k = 0; k < kSub; ++k) is_on_grid[k] = on_aux[k];
    }
  }
  return RefineGroup<kGroup, kDims, kBits>(t, dist, spec, xval, weight, waux, scale, L, is_on_grid);
}
// SearchGroup as a kernel, for the quantizers to pick per CPU level.
using SearchGroupFn = float (*)(const LatticeTables& t, const SearchSpec& spec, const float* xval,
                                const float* weight, const float* waux, float scale, float base,
                                float denom, int8_t* L, bool* is_on_grid);

template <int kGroup, int kDims, int kBits>
float SearchGroup_ref(const LatticeTables& t, const SearchSpec& spec, const float* xval,
                      const float* weight, const float* waux, float scale, float base, float denom,
                      int8_t* L, bool* is_on_grid) {
  return SearchGroup<kGroup, kDims, kBits>(t, NearestNeighbour_ref<kDims>, spec, xval, weight, waux,
                                           scale, base, denom, L, is_on_grid);
}

namespace internal {
// SearchGroup with the candidates batched (quants_iq_avx2.cc): each
// candidate's rounding (eight values per step) and neighbour searches
// first, then the fit sums of eight candidates at once, one per lane, each
// lane summing over the values in the reference's order, then the
// reference's choice in candidate order and its refinement. The same scale
// and levels to the bit. One per shape: <32, 8, 2> (IQ2_XXS), <16, 8, 2>
// (IQ2_XS, IQ2_S), <32, 4, 3> (IQ3_XXS, IQ3_S).
// REQUIRES: AVX2; spec.is_hi - spec.is_lo < 32.
float SearchGroup32x8_avx2(const LatticeTables& t, const SearchSpec& spec, const float* xval,
                           const float* weight, const float* waux, float scale, float base,
                           float denom, int8_t* L, bool* is_on_grid);
float SearchGroup16x8_avx2(const LatticeTables& t, const SearchSpec& spec, const float* xval,
                           const float* weight, const float* waux, float scale, float base,
                           float denom, int8_t* L, bool* is_on_grid);
float SearchGroup32x4_avx2(const LatticeTables& t, const SearchSpec& spec, const float* xval,
                           const float* weight, const float* waux, float scale, float base,
                           float denom, int8_t* L, bool* is_on_grid);
}  // namespace internal

// The search for `level` (cpu_features.h): the best at or below it.
template <int kGroup, int kDims, int kBits>
inline SearchGroupFn SearchGroupFor(CpuLevel level) {
  static_assert((kGroup == 32 && kDims == 8 && kBits == 2) ||
                (kGroup == 16 && kDims == 8 && kBits == 2) ||
                (kGroup == 32 && kDims == 4 && kBits == 3));
  if (level >= CpuLevel::kAvx2) {
    if constexpr (kDims == 4) return internal::SearchGroup32x4_avx2;
    if constexpr (kGroup == 16) return internal::SearchGroup16x8_avx2;
    return internal::SearchGroup32x8_avx2;
  }
  return SearchGroup_ref<kGroup, kDims, kBits>;
}

// Folds the signs of 8 values into xval (|x|) and a sign byte. With
// `even_parity`, the number of negative values is made even by leaving the
// value of least weight * x^2 with its sign (first on ties), and the byte
// keeps 7 bits (the 8th is implied by parity).
inline uint8_t FoldSigns8(const float* xb, const float* weight, bool even_parity, float* xval) {
  int nflip = 0;
  uint8_t s = 0;
  for (int i = 0; i < 8; ++i) {
    if (xb[i] >= 0) {
      xval[i] = xb[i];
    } else {
      xval[i] = -xb[i];
      ++nflip;
      s |= static_cast<uint8_t>(1 << i);
    }
  }
  if (!even_parity) return s;
  if (nflip % 2) {
    int imin = 0;
    float min = weight[0] * xb[0] * xb[0];
    for (int i = 1; i < 8; ++i) {
      const float ax = weight[i] * xb[i] * xb[i];
      if (ax < min) {
        min = ax;
        imin = i;
      }
    }
    xval[imin] = -xval[imin];
    s ^= static_cast<uint8_t>(1 << imin);
  }
  return s & 127;
}

// Per-value weights of a group: qw * sqrt(sigma2 + x^2) with an importance
// matrix; without one, `fallback_sigma_scale` * sigma2 + x^2 (IQ2_S) or x^2.
inline void GroupWeights(const float* xb, const float* qw, float sigma2, int n,
                         float fallback_sigma_scale, float* weight) {
  if (qw != nullptr) {
    for (int i = 0; i < n; ++i) weight[i] = qw[i] * std::sqrt(sigma2 + xb[i] * xb[i]);
  } else if (fallback_sigma_scale != 0) {
    for (int i = 0; i < n; ++i) weight[i] = fallback_sigma_scale * sigma2 + xb[i] * xb[i];
  } else {
    for (int i = 0; i < n; ++i) weight[i] = xb[i] * xb[i];
  }
}

// GroupWeights of a 32-value group without a fallback sigma scale (the IQ3
// types), and their square roots: waux[i] = sqrt(weight[i]).
using GroupWeights32Fn = void (*)(const float* xb, const float* qw, float sigma2, float* weight,
                                  float* waux);

inline void GroupWeights32_ref(const float* xb, const float* qw, float sigma2, float* weight,
                               float* waux) {
  GroupWeights(xb, qw, sigma2, 32, 0.0f, weight);
  for (int i = 0; i < 32; ++i) waux[i] = std::sqrt(weight[i]);
}

namespace internal {
// GroupWeights32_ref eight values per step, with its operations (sqrt is
// correctly rounded either way). REQUIRES: AVX2.
void GroupWeights32_avx2(const float* xb, const float* qw, float sigma2, float* weight,
                         float* waux);
}  // namespace internal

inline GroupWeights32Fn GroupWeights32For(CpuLevel level) {
  return level >= CpuLevel::kAvx2 ? internal::GroupWeights32_avx2 : GroupWeights32_ref;
}

// 0.5 * (id * s - 1) rounded and clamped to [0, hi]: a group scale's code.
inline int ScaleCode(float id, float s, int hi) {
  return ClampInt(NearestInt(0.5f * (id * s - 1)), 0, hi);
}

}  // namespace quantd::core::gguf::iq

#endif  // QUANTD_CORE_GGUF_QUANTS_IQ_SEARCH_H_
