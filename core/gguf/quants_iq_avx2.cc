// AVX2 kernels of the lattice-grid quantizers' searches (quants_iq_search.h):
// the nearest-neighbour search and the batched group-scale search. Every
// value that feeds a comparison is computed with the scalar reference's
// operations in its order (no FMA; sums in the same order, one candidate or
// point per lane), so the searches pick the same points and scales to the
// bit. Compiled for AVX2 through the target attribute; called only when the
// CPU has it (NearestNeighbourFor, SearchGroupFor). Pure functions over
// caller-owned arrays; thread-safe.
#include <immintrin.h>

#include <cfloat>
#include <climits>
#include <cstddef>
#include <cstdint>

#include "quants_iq_search.h"

#pragma GCC diagnostic ignored "-Wpsabi"

#define QUANTD_IQ_AVX2 __attribute__((target("avx2")))
#define QUANTD_IQ_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline
#define QUANTD_IQ_AVX2_INLINE_LAMBDA __attribute__((target("avx2"), always_inline))

namespace quantd::core::gguf::iq::internal {
namespace {

// scale * (2l + 1) for the levels of a term table (below).
template <int kDims>
QUANTD_IQ_AVX2_INLINE __m256 ScaledLevels(float scale) {
  const __m256 q = kDims == 4 ? _mm256_setr_ps(1, 3, 5, 7, 9, 11, 13, 15)
                              : _mm256_setr_ps(1, 3, 5, 7, 1, 3, 5, 7);
  return _mm256_mul_ps(_mm256_set1_ps(scale), q);
}

// The per-level terms of the distance: for 4 coordinates, T[i] lane l =
// w[i] * d * d with d = scale * (2l + 1) - x[i] (the reference's
// `w[i] * diff * diff`); for 8 coordinates (levels 0..3), T[p] lanes 0..3
// hold coordinate 2p's levels and lanes 4..7 coordinate 2p + 1's.
// sq: ScaledLevels<kDims>(scale).
template <int kDims>
QUANTD_IQ_AVX2_INLINE void TermTables(const float* x, const float* w, __m256 sq, __m256* T) {
  if constexpr (kDims == 4) {
    for (int i = 0; i < 4; ++i) {
      const __m256 diff = _mm256_sub_ps(sq, _mm256_set1_ps(x[i]));
      T[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(w[i]), diff), diff);
    }
  } else {
    for (int p = 0; p < 4; ++p) {
      const __m256 xv = _mm256_set_m128(_mm_set1_ps(x[2 * p + 1]), _mm_set1_ps(x[2 * p]));
      const __m256 wv = _mm256_set_m128(_mm_set1_ps(w[2 * p + 1]), _mm_set1_ps(w[2 * p]));
      const __m256 diff = _mm256_sub_ps(sq, xv);
      T[p] = _mm256_mul_ps(_mm256_mul_ps(wv, diff), diff);
    }
  }
}

// NearestNeighbour_ref's result from the list's slot rows: the distance of
// a point is 0 + T[coordinate 0][its slot] + ... in coordinate order, as
// the reference accumulates it; distances that are not below FLT_MAX (NaN
// included) never count, as in the reference's strict comparison against
// FLT_MAX. The answer is the first position holding the smallest distance
// (0 when none counts).
template <int kDims>
QUANTD_IQ_AVX2_INLINE int Nearest(const uint8_t* slots, int n, const float* x, const float* w,
                                  __m256 sq) {
  __m256 T[4];
  TermTables<kDims>(x, w, sq, T);
  const int stride = (n + kNeighbourPadding - 1) / kNeighbourPadding * kNeighbourPadding;
  const __m256 flt_max = _mm256_set1_ps(FLT_MAX);
  auto distances = [&](int j) QUANTD_IQ_AVX2_INLINE_LAMBDA {
    __m256 d = _mm256_setzero_ps();
    for (int i = 0; i < kDims; ++i) {
      const __m256i s = _mm256_cvtepu8_epi32(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(slots + i * stride + j)));
      d = _mm256_add_ps(d, _mm256_permutevar8x32_ps(T[kDims == 4 ? i : i / 2], s));
    }
    // Distances not below FLT_MAX become FLT_MAX (min_ps gives its second
    // operand for NaN); counting ones stay as they are, so the smallest
    // counting distance is the minimum, and when none counts every lane is
    // FLT_MAX and position 0 wins. Padding lanes repeat position 0
    // (LatticeTables::NeighbourSlots), so they never come first.
    return _mm256_min_ps(d, flt_max);
  };
  // The minimum of v's lanes, in every lane.
  auto all_min = [](__m256 v) QUANTD_IQ_AVX2_INLINE_LAMBDA {
    v = _mm256_min_ps(v, _mm256_permute2f128_ps(v, v, 1));
    v = _mm256_min_ps(v, _mm256_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm256_min_ps(v, _mm256_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
  };
  // Positions holding m (see `distances`: when m is FLT_MAX, none counts and
  // position 0 is the answer): a bit per lane.
  auto at = [](__m256 d, __m256 m) QUANTD_IQ_AVX2_INLINE_LAMBDA {
    return _mm256_movemask_ps(_mm256_cmp_ps(d, m, _CMP_EQ_OQ));
  };
  if (n <= 8) {  // most lists: one step
    const __m256 d = distances(0);
    return __builtin_ctz(static_cast<unsigned>(at(d, all_min(d))));
  }
  if (n <= 16) {
    const __m256 d0 = distances(0), d1 = distances(8);
    const __m256 m = all_min(_mm256_min_ps(d0, d1));
    const unsigned mask =
        static_cast<unsigned>(at(d0, m)) | (static_cast<unsigned>(at(d1, m)) << 8);
    return __builtin_ctz(mask);
  }
  // Longer lists: the distances and their minimum, then the first position
  // holding it.
  alignas(32) float d2[kMaxNeighbours + kNeighbourPadding];
  __m256 vmin = flt_max;
  for (int j = 0; j < n; j += 8) {
    const __m256 d = distances(j);
    _mm256_store_ps(d2 + j, d);
    vmin = _mm256_min_ps(vmin, d);
  }
  const __m256 m = all_min(vmin);
  for (int j = 0; j < n; j += 8) {
    const int mask = at(_mm256_load_ps(d2 + j), m);
    if (mask != 0) return j + __builtin_ctz(static_cast<unsigned>(mask));
  }
  return 0;
}

// The levels of position j of a neighbour list's slot rows.
template <int kDims>
QUANTD_IQ_AVX2_INLINE void SlotLevels(const uint8_t* slots, int n, int j, int8_t* levels,
                                      int level_stride) {
  const int stride = (n + kNeighbourPadding - 1) / kNeighbourPadding * kNeighbourPadding;
  for (int i = 0; i < kDims; ++i) {
    const int offset = kDims == 8 ? 4 * (i % 2) : 0;
    levels[i * level_stride] = static_cast<int8_t>(slots[i * stride + j] - offset);
  }
}

}  // namespace

QUANTD_IQ_AVX2 int NearestNeighbour4_avx2(const float*, const uint16_t*, const uint8_t* slots,
                                          int n, const float* x, const float* w, float scale) {
  return Nearest<4>(slots, n, x, w, ScaledLevels<4>(scale));
}

QUANTD_IQ_AVX2 int NearestNeighbour8_avx2(const float*, const uint16_t*, const uint8_t* slots,
                                          int n, const float* x, const float* w, float scale) {
  return Nearest<8>(slots, n, x, w, ScaledLevels<8>(scale));
}

namespace {

// The map values of a group's sub-groups, in order, from its levels r (eight
// per vector, max_level below 2^bits): each sub-group's packed vector (the
// levels shifted to their bits; the bits do not overlap, so sums are ORs)
// and a gather.
template <int kGroup, int kDims>
QUANTD_IQ_AVX2_INLINE void MapSubGroups(const int32_t* map, const __m256i* r, int32_t* out) {
  if constexpr (kDims == 4) {  // 3 bits; two sub-groups per vector
    static_assert(kGroup == 32);
    const __m256i sh = _mm256_setr_epi32(0, 3, 6, 9, 0, 3, 6, 9);
    const __m256i h01 = _mm256_hadd_epi32(_mm256_sllv_epi32(r[0], sh), _mm256_sllv_epi32(r[1], sh));
    const __m256i h23 = _mm256_hadd_epi32(_mm256_sllv_epi32(r[2], sh), _mm256_sllv_epi32(r[3], sh));
    // Lanes: sub-groups 0, 2, 4, 6, 1, 3, 5, 7.
    const __m256i u = _mm256_hadd_epi32(h01, h23);
    const __m256i m = _mm256_i32gather_epi32(map, u, 4);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out),
                       _mm256_permutevar8x32_epi32(m, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  } else {  // 2 bits; one sub-group per vector
    static_assert(kGroup == 32 || kGroup == 16);
    const __m256i sh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    __m256i h;
    if constexpr (kGroup == 32) {
      const __m256i h01 =
          _mm256_hadd_epi32(_mm256_sllv_epi32(r[0], sh), _mm256_sllv_epi32(r[1], sh));
      const __m256i h23 =
          _mm256_hadd_epi32(_mm256_sllv_epi32(r[2], sh), _mm256_sllv_epi32(r[3], sh));
      h = _mm256_hadd_epi32(h01, h23);  // halves of sub-groups 0..3
    } else {
      h = _mm256_hadd_epi32(_mm256_sllv_epi32(r[0], sh), _mm256_sllv_epi32(r[1], sh));
      h = _mm256_hadd_epi32(h, h);  // halves of sub-groups 0, 1, 0, 1
    }
    const __m128i u = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_i32gather_epi32(map, u, 4));
  }
}

// Stores the levels r (eight per vector, kGroup / 8 vectors, each 0..127)
// as 32 bytes in value order, zero past kGroup.
template <int kGroup>
QUANTD_IQ_AVX2_INLINE void StoreLevelRow(const __m256i* r, int8_t* row) {
  static_assert(kGroup == 32 || kGroup == 16);
  const __m256i p01 = _mm256_packs_epi32(r[0], r[1]);
  __m256i p23 = _mm256_setzero_si256();
  if constexpr (kGroup == 32) p23 = _mm256_packs_epi32(r[2], r[3]);
  // Dwords: r0[0..3], r1[0..3], r2[0..3], r3[0..3], r0[4..7], r1[4..7], ...
  const __m256i p = _mm256_packs_epi16(p01, p23);
  _mm256_store_si256(reinterpret_cast<__m256i*>(row),
                     _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// Transposes eight rows of 32 bytes (rows[m * 32 + i]) to 32 columns of 8
// (columns[i * 8 + m]).
QUANTD_IQ_AVX2_INLINE void TransposeLevelRows(const int8_t* rows, int8_t* columns) {
  __m256i R[8];
  for (int m = 0; m < 8; ++m) R[m] = _mm256_load_si256(reinterpret_cast<const __m256i*>(rows + 32 * m));
  // Per 128-bit lane (values 0..15 in lane 0, 16..31 in lane 1):
  for (int h = 0; h < 2; ++h) {
    // a[p]: rows 2p, 2p + 1 interleaved, values 8h..8h + 7 of each lane.
    __m256i a[4];
    for (int p = 0; p < 4; ++p) {
      a[p] = h == 0 ? _mm256_unpacklo_epi8(R[2 * p], R[2 * p + 1])
                    : _mm256_unpackhi_epi8(R[2 * p], R[2 * p + 1]);
    }
    // b: rows 0..3 (b0) and 4..7 (b1) of values 8h + 0..3 (lo) and 4..7 (hi).
    const __m256i b0lo = _mm256_unpacklo_epi16(a[0], a[1]);
    const __m256i b0hi = _mm256_unpackhi_epi16(a[0], a[1]);
    const __m256i b1lo = _mm256_unpacklo_epi16(a[2], a[3]);
    const __m256i b1hi = _mm256_unpackhi_epi16(a[2], a[3]);
    // Two values' eight rows each: values 8h + 2q, 8h + 2q + 1.
    const __m256i c[4] = {_mm256_unpacklo_epi32(b0lo, b1lo), _mm256_unpackhi_epi32(b0lo, b1lo),
                          _mm256_unpacklo_epi32(b0hi, b1hi), _mm256_unpackhi_epi32(b0hi, b1hi)};
    for (int q = 0; q < 4; ++q) {
      int8_t* out = columns + 8 * (8 * h + 2 * q);
      _mm_store_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(c[q]));
      _mm_store_si128(reinterpret_cast<__m128i*>(out + 8 * 16), _mm256_extracti128_si256(c[q], 1));
    }
  }
}

template <int kGroup, int kDims, int kBits>
QUANTD_IQ_AVX2_INLINE float SearchGroup(const LatticeTables& t, const SearchSpec& spec,
                                        const float* xval, const float* weight, const float* waux,
                                        float scale, float base, float denom, int8_t* L,
                                        bool* is_on_grid) {
  static_assert(kGroup % 8 == 0 && (kDims == 4 || kDims == 8));
  constexpr int kSub = kGroup / kDims;
  constexpr int kMaxCandidates = 32;
  const int nc = spec.is_hi - spec.is_lo + 1;
  const int nc8 = (nc + 7) / 8 * 8;
  // levels[c][i]: the level of value i under candidate c (the reference's
  // Laux of that candidate); a row per candidate, 32 bytes (zero past
  // kGroup), transposed eight candidates at a time for the sums.
  alignas(32) int8_t levels[kMaxCandidates][32];
  // Bit k: sub-group k of candidate c rounded onto the grid.
  unsigned on_grid[kMaxCandidates];
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 magic = _mm256_set1_ps(12582912.0f);  // NearestInt's 1.5 * 2^23
  const __m256i mantissa = _mm256_set1_epi32(0x007fffff);
  const __m256i bias = _mm256_set1_epi32(0x00400000);
  const __m256i hi = _mm256_set1_epi32(spec.max_level);
  const __m256i lo = _mm256_setzero_si256();
  // ClampInt(NearestInt(0.5f * (id * x - 1)), 0, max_level) of every
  // value, as RoundToGrid, and the sub-groups' map values.
  auto round_group = [&](float id, __m256i* r, int32_t* map_values) QUANTD_IQ_AVX2_INLINE_LAMBDA {
    const __m256 vid = _mm256_set1_ps(id);
    for (int v = 0; v < kGroup; v += 8) {
      const __m256 a =
          _mm256_mul_ps(half, _mm256_sub_ps(_mm256_mul_ps(vid, _mm256_loadu_ps(xval + v)), one));
      const __m256i bits = _mm256_castps_si256(_mm256_add_ps(a, magic));
      const __m256i l = _mm256_sub_epi32(_mm256_and_si256(bits, mantissa), bias);
      r[v / 8] = _mm256_max_epi32(_mm256_min_epi32(l, hi), lo);
    }
    MapSubGroups<kGroup, kDims>(t.MapData(), r, map_values);
  };
  for (int c = 0; c < nc; ++c) {
    const float id = (base + static_cast<float>(spec.is_lo + c) * spec.step) / denom;
    const __m256 sq = ScaledLevels<kDims>(1 / id);
    __m256i r[kGroup / 8];
    alignas(32) int32_t map_values[8];
    round_group(id, r, map_values);
    // Every sub-group's rounded levels, then the off-grid ones replaced by
    // their nearest neighbours' (no branch per sub-group).
    // Off the grid: a negative map value (its sign bit).
    constexpr unsigned kAll = (1u << kSub) - 1;
    unsigned off_grid;
    if constexpr (kSub == 8) {
      off_grid = static_cast<unsigned>(_mm256_movemask_ps(
          _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(map_values)))));
    } else {
      off_grid = static_cast<unsigned>(_mm_movemask_ps(_mm_castsi128_ps(
                     _mm_load_si128(reinterpret_cast<const __m128i*>(map_values))))) &
                 kAll;
    }
    on_grid[c] = ~off_grid & kAll;
    StoreLevelRow<kGroup>(r, levels[c]);
    for (; off_grid != 0; off_grid &= off_grid - 1) {
      const int k = __builtin_ctz(off_grid);
      const LatticeTables::SlotList list = t.NeighbourSlotList(map_values[k]);
      const int j = Nearest<kDims>(list.slots, list.count, xval + kDims * k, waux + kDims * k, sq);
      SlotLevels<kDims>(list.slots, list.count, j, &levels[c][kDims * k], 1);
    }
  }
  for (int c = nc; c < nc8; ++c) _mm256_store_si256(reinterpret_cast<__m256i*>(levels[c]), lo);
  // The fit sums of eight candidates per pass, each lane over the values in
  // order: sumqx += w * x * q, sumq2 += w * q * q.
  alignas(32) float sumqx[kMaxCandidates], sumq2[kMaxCandidates];
  // 2l + 1 for level l (exact in float, as the reference's conversion).
  const __m256 odd = _mm256_setr_ps(1, 3, 5, 7, 9, 11, 13, 15);
  for (int c0 = 0; c0 < nc8; c0 += 8) {
    alignas(32) int8_t columns[32][8];  // columns[i][m]: levels[c0 + m][i]
    TransposeLevelRows(&levels[c0][0], &columns[0][0]);
    __m256 sx = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    for (int i = 0; i < kGroup; ++i) {
      const __m256i l =
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(columns[i])));
      const __m256 q = _mm256_permutevar8x32_ps(odd, l);
      const float w = weight[i];
      const float wx = w * xval[i];
      sx = _mm256_add_ps(sx, _mm256_mul_ps(_mm256_set1_ps(wx), q));
      s2 = _mm256_add_ps(s2, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(w), q), q));
    }
    _mm256_store_ps(sumqx + c0, sx);
    _mm256_store_ps(sumq2 + c0, s2);
  }
  // The reference's choice, in candidate order.
  float best = 0;
  int chosen = -1;
  for (int c = 0; c < nc; ++c) {
    if (sumq2[c] > 0 && sumqx[c] * sumqx[c] > best * sumq2[c]) {
      scale = sumqx[c] / sumq2[c];
      best = scale * sumqx[c];
      chosen = c;
    }
  }
  if (chosen >= 0) {
    for (int i = 0; i < kGroup; ++i) L[i] = levels[chosen][i];
    for (int k = 0; k < kSub; ++k) is_on_grid[k] = (on_grid[chosen] >> k) & 1;
  }
  // RefineGroup, with the rounding and the neighbour searches as above.
  bool any_off = false;
  for (int k = 0; k < kSub; ++k) any_off |= !is_on_grid[k];
  if ((spec.refine_always || any_off) && scale > 0) {
    const float id = 1 / scale;
    const __m256 sq = ScaledLevels<kDims>(scale);
    __m256i r[kGroup / 8];
    alignas(32) int32_t map_values[8];
    round_group(id, r, map_values);
    alignas(32) int8_t row[32];
    StoreLevelRow<kGroup>(r, row);
    for (int k = 0; k < kSub; ++k) {
      if (!spec.refine_all && is_on_grid[k]) continue;
      if (map_values[k] >= 0) {
        for (int i = 0; i < kDims; ++i) L[kDims * k + i] = row[kDims * k + i];
      } else {
        const LatticeTables::SlotList list = t.NeighbourSlotList(map_values[k]);
        const int j =
            Nearest<kDims>(list.slots, list.count, xval + kDims * k, waux + kDims * k, sq);
        SlotLevels<kDims>(list.slots, list.count, j, L + kDims * k, 1);
      }
    }
    float sx = 0, s2 = 0;
    for (int i = 0; i < kGroup; ++i) {
      const float w = weight[i];
      const float q = static_cast<float>(2 * L[i] + 1);
      sx += w * xval[i] * q;
      s2 += w * q * q;
    }
    if (s2 > 0) scale = sx / s2;
  }
  return scale;
}

}  // namespace

QUANTD_IQ_AVX2 void GroupWeights32_avx2(const float* xb, const float* qw, float sigma2,
                                        float* weight, float* waux) {
  const __m256 s2 = _mm256_set1_ps(sigma2);
  for (int v = 0; v < 32; v += 8) {
    const __m256 x = _mm256_loadu_ps(xb + v);
    const __m256 xx = _mm256_mul_ps(x, x);
    // qw * sqrt(sigma2 + x * x) with an importance matrix, else x * x.
    const __m256 w = qw != nullptr ? _mm256_mul_ps(_mm256_loadu_ps(qw + v),
                                                   _mm256_sqrt_ps(_mm256_add_ps(s2, xx)))
                                   : xx;
    _mm256_storeu_ps(weight + v, w);
    _mm256_storeu_ps(waux + v, _mm256_sqrt_ps(w));
  }
}

#define QUANTD_IQ_SEARCH_GROUP(name, group, dims, bits)                                        \
  QUANTD_IQ_AVX2 float name(const LatticeTables& t, const SearchSpec& spec, const float* xval, \
                            const float* weight, const float* waux, float scale, float base,   \
                            float denom, int8_t* L, bool* is_on_grid) {                        \
    return SearchGroup<group, dims, bits>(t, spec, xval, weight, waux, scale, base, denom, L,  \
                                          is_on_grid);                                         \
  }
QUANTD_IQ_SEARCH_GROUP(SearchGroup32x8_avx2, 32, 8, 2)
QUANTD_IQ_SEARCH_GROUP(SearchGroup16x8_avx2, 16, 8, 2)
QUANTD_IQ_SEARCH_GROUP(SearchGroup32x4_avx2, 32, 4, 3)
#undef QUANTD_IQ_SEARCH_GROUP

}  // namespace quantd::core::gguf::iq::internal
