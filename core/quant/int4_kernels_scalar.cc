// Scalar INT4 tile kernels (every CpuLevel's fallback and the definition the
// SIMD variants match) and the per-level kernel tables.
#include "int4_kernels.h"

#include "quantd/core/quant/quality.h"

namespace quantd::core::quant::int4 {

int MinMaxRowsScalar(const float* src, int64_t ld, int rows, int width, float* mn, float* mx,
                     bool* nan) {
  bool unordered = false;
  for (int i = 0; i < rows; ++i) {
    const float* v = src + i * ld;
    for (int j = 0; j < width; ++j) {
      mn[j] = v[j] < mn[j] ? v[j] : mn[j];
      mx[j] = v[j] > mx[j] ? v[j] : mx[j];
      unordered |= v[j] != v[j];
    }
  }
  if (unordered) *nan = true;
  return width;
}

void CodeTileScalar(const float* src, int64_t ld, int rows, int tn, const float* r, const float* z,
                    const CodeParams& p, uint8_t* codes) {
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < tn; ++j) {
      codes[i * kTileCols + j] =
          static_cast<uint8_t>(static_cast<int>(CodeScalar(src[i * ld + j], r[j], z[j], p)));
    }
  }
}

namespace {

void CodeFullTileScalar(const float* src, int64_t ld, int rows, const float* r, const float* z,
                        const CodeParams& p, uint8_t* codes) {
  CodeTileScalar(src, ld, rows, kTileCols, r, z, p, codes);
}

}  // namespace

double BlockErrorScalar(const float* v, int rows, const BlockQ& q, const CodeParams& p) {
  const float z = static_cast<float>(q.zp);
  auto err_of = [&](float x) {
    const float d = (CodeScalar(x, q.recip, z, p) - z) * q.scale;
    return static_cast<double>(x) - static_cast<double>(d);
  };
  double part[4] = {0.0, 0.0, 0.0, 0.0};
  int i = 0;
  for (; i + 8 <= rows; i += 8) {
    for (int l = 0; l < 4; ++l) {
      const double e0 = err_of(v[i + l]);
      const double e1 = err_of(v[i + 4 + l]);
      part[l] = part[l] + (e0 * e0 + e1 * e1);
    }
  }
  double err = (part[0] + part[1]) + (part[2] + part[3]);
  for (; i < rows; ++i) {
    const double e = err_of(v[i]);
    err += e * e;
  }
  return err;
}

void TileStatsScalar(const float* src, int64_t ld, int rows, int tn, const uint8_t* codes,
                     const float* s, const float* z, const TileStatsArgs& a, float* w2, float* e2,
                     float* emax) {
  TileStatsBody(src, ld, rows, tn, codes, s, z, a, w2, e2, emax);
}

void AddProbeSums(const float* y, const float* yq, int64_t n_begin, int64_t n_end,
                  Int4QualitySums* sums) {
  const int64_t range = n_end - n_begin;
  // Sampled groups only: the others' sums stayed 0 (and would add 0).
  for (int64_t g0 = n_begin; g0 < n_end; g0 += QualityAccumulator::kProbeGroup) {
    if (!ProbeGroupSampled(g0 / QualityAccumulator::kProbeGroup, sums->sample_threshold)) {
      continue;
    }
    const int64_t g1 = std::min<int64_t>(n_end, g0 + QualityAccumulator::kProbeGroup);
    for (int p = 0; p < sums->probe_rows; ++p) {
      const float* yp = y + p * range;
      const float* yqp = yq + p * range;
      for (int64_t c = g0 - n_begin; c < g1 - n_begin; ++c) {
        const double a = yp[c], d = static_cast<double>(yp[c] - yqp[c]);
        sums->sum_y2 += a * a;
        sums->sum_ye2 += d * d;
      }
    }
  }
}

const Int4Kernels& Int4KernelsFor(CpuLevel level) {
  static constexpr Int4Kernels kScalar = {CpuLevel::kScalar, MinMaxRowsScalar, CodeFullTileScalar,
                                          nullptr,           nullptr,          BlockErrorScalar,
                                          TileStatsScalar,   nullptr};
#if defined(__x86_64__)
  static constexpr Int4Kernels kSse2 = {CpuLevel::kSse2,   MinMaxRowsSse2, CodeTileSse2,
                                        PackNBitsTileSse2, nullptr,        BlockErrorScalar,
                                        TileStatsScalar,   nullptr};
  static constexpr Int4Kernels kAvx2 = {
      CpuLevel::kAvx2,     MinMaxRowsAvx2, CodeTileAvx2,  PackNBitsTileSse2,
      SymmetricParamsAvx2, BlockErrorAvx2, TileStatsAvx2, nullptr};
  // AVX-512: the AVX2 tile kernels, and the row path.
  static constexpr Int4Kernels kAvx512 = {CpuLevel::kAvx512, MinMaxRowsAvx2,      CodeTileAvx2,
                                          PackNBitsTileSse2, SymmetricParamsAvx2, BlockErrorAvx2,
                                          TileStatsAvx2,     &kNBitsRowsAvx512};
  if (level >= CpuLevel::kAvx512) return kAvx512;
  if (level >= CpuLevel::kAvx2) return kAvx2;
  if (level >= CpuLevel::kSse2) return kSse2;
#endif
  return kScalar;
}

}  // namespace quantd::core::quant::int4
