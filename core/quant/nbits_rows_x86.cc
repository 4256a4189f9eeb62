// AVX-512 row kernels of MatMulNBits, 4 and 8 bits (int4_kernels.h, "Row
// kernels"): a weight stored by column has each output column's K values
// contiguous, so a block is bs consecutive floats, its codes bs / 2 (4 bits)
// or bs (8 bits) consecutive bytes and its scale the next float of the
// column's scales. One pass finds the
// blocks' extremes, one computes the parameters 16 blocks at a time, one
// codes, packs and measures; the row stays in L1/L2 between them.
//
// Bytes: the codes and parameters run the scalar float operations per value
// (mul, add, clamp, round half away; the same divisions), so they equal the
// tiled path's. Figures: the sums run per lane and are reduced per block
// (errors) or per row (probe products); they agree within float rounding.
//
// Compiled for AVX-512 F/BW/DQ/VL (target attribute); used only at
// CpuLevel::kAvx512 through Int4KernelsFor.
#include "int4_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cfloat>

// GCC 12 warns inside its own AVX-512 headers (the undefined source of the
// reductions); nothing here reads an uninitialized value.
#if !defined(__clang__)  // a GCC-only warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wpsabi"

#define QUANTD_AVX512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512dq,avx512vl")))

namespace quantd::core::quant::int4 {
namespace {

constexpr int kLanes = 16;

// One block's extremes from its values at v (bs floats), after the vector
// min/max `lo`, `hi` over them; see BlockMinMaxRowFn.
QUANTD_AVX512 inline void BlockExtremes(const float* v, int bs, __m512 lo, __m512 hi, float* mn,
                                        float* mx) {
  float a = _mm512_reduce_min_ps(lo), c = _mm512_reduce_max_ps(hi);
  // A nonzero extreme has one bit pattern. A zero one may be +0 or -0 and
  // the scan keeps the first in k order, which a tree reduction does not
  // know: scan such a block in order.
  if (a == 0.0f || c == 0.0f) {
    a = FLT_MAX;
    c = -FLT_MAX;
    for (int i = 0; i < bs; ++i) {
      a = v[i] < a ? v[i] : a;
      c = v[i] > c ? v[i] : c;
    }
  }
  *mn = a;
  *mx = c;
}

// The blocks' extremes of a float row at src, or (kWiden) of a BF16 row at
// src widened into `wide` on the way, the next row fetched ahead.
template <bool kWiden>
QUANTD_AVX512 inline bool MinMaxRowBody(const void* src, const void* next, int64_t k, int bs,
                                        float* wide, float* mn, float* mx) {
  const int64_t blocks = k / bs;
  const auto* in = static_cast<const unsigned char*>(src);
  const auto* ahead = static_cast<const char*>(next);
  __mmask16 unordered = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* v = kWiden ? wide + b * bs : reinterpret_cast<const float*>(in) + b * bs;
    __m512 lo = _mm512_set1_ps(FLT_MAX), hi = _mm512_set1_ps(-FLT_MAX);
    for (int g = 0; g < bs; g += kLanes) {
      const int64_t i = b * bs + g;
      __m512 x;
      if constexpr (kWiden) {
        // 16 BF16 values are 32 bytes: one line of the next row per two steps.
        if (ahead != nullptr && (i & 31) == 0) _mm_prefetch(ahead + 2 * i, _MM_HINT_T0);
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 2 * i));
        x = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
        _mm512_storeu_ps(wide + i, x);
      } else {
        x = _mm512_loadu_ps(v + g);
      }
      lo = _mm512_min_ps(x, lo);  // x < lo ? x : lo, as the scalar scan (NaN skipped)
      hi = _mm512_max_ps(x, hi);
      unordered |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    }
    BlockExtremes(v, bs, lo, hi, mn + b, mx + b);
  }
  return unordered == 0;
}

QUANTD_AVX512 bool BlockMinMaxRowAvx512(const float* w, int64_t k, int bs, float* mn, float* mx) {
  return MinMaxRowBody<false>(w, nullptr, k, bs, nullptr, mn, mx);
}

QUANTD_AVX512 bool WidenMinMaxRowAvx512(const void* src, const void* next, int64_t k, int bs,
                                        float* wide, float* mn, float* mx) {
  return MinMaxRowBody<true>(src, next, k, bs, wide, mn, mx);
}

// SymmetricParamsAvx2's operations, 16 blocks per register. -m / d equals
// m / -d (IEEE division is sign-symmetric), Blockwise8's form.
QUANTD_AVX512 void SymmetricParamsRowAvx512(const float* mn, const float* mx, int64_t blocks,
                                            int bits, float* scale, float* recip, float* zpf) {
  const float half_range = static_cast<float>(1 << (bits - 1));  // 8 or 128
  const __m512 sign = _mm512_set1_ps(-0.0f);
  const __m512 divisor = _mm512_set1_ps(half_range);
  const __m512 zp = _mm512_set1_ps(half_range);
  for (int64_t b = 0; b < blocks; b += kLanes) {
    const int64_t left = blocks - b;
    const __mmask16 m =
        left >= kLanes ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
    const __m512 lo = _mm512_maskz_loadu_ps(m, mn + b), hi = _mm512_maskz_loadu_ps(m, mx + b);
    // m = |mx| > |mn| ? mx : mn (a tie picks mn), scale = -m / d.
    const __mmask16 gt =
        _mm512_cmp_ps_mask(_mm512_andnot_ps(sign, hi), _mm512_andnot_ps(sign, lo), _CMP_GT_OQ);
    const __m512 s = _mm512_div_ps(_mm512_xor_ps(_mm512_mask_blend_ps(gt, lo, hi), sign), divisor);
    const __mmask16 nz = _mm512_cmp_ps_mask(s, _mm512_setzero_ps(), _CMP_NEQ_OQ);
    _mm512_mask_storeu_ps(scale + b, m, s);
    _mm512_mask_storeu_ps(recip + b, m, _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), s));
    _mm512_mask_storeu_ps(zpf + b, m, zp);
  }
}

template <int kBits, bool kStats, bool kStoreWq>
QUANTD_AVX512 inline void CodeRowBody(const float* w, int64_t k, int bs, const float* scale,
                                      const float* recip, const float* zpf, uint8_t* out,
                                      RowStats* stats, float* wq) {
  // The error sums run in float lanes over kFoldBlocks blocks, then in double.
  constexpr int64_t kFoldBlocks = 16;
  const int64_t blocks = k / bs;
  const __m512 top = _mm512_set1_ps(static_cast<float>((1 << kBits) - 1));
  const __m512 half = _mm512_set1_ps(0.5f);
  const __m512i one = _mm512_set1_epi32(1);
  __m512d w2 = _mm512_setzero_pd(), e2 = _mm512_setzero_pd();
  __m512 emax = _mm512_setzero_ps();
  __m512 fw2 = _mm512_setzero_ps(), fe2 = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const __m512 r = _mm512_set1_ps(recip[b]), z = _mm512_set1_ps(zpf[b]);
    const __m512 s = _mm512_set1_ps(scale[b]);
    for (int g = 0; g < bs; g += kLanes) {
      const int64_t i = b * bs + g;
      const __m512 x = _mm512_loadu_ps(w + i);
      // clamp(roundf(x * r + z), 0, top) as CodeNBitsAvx2: clamped to [0,
      // top] first (rounding is monotonic and keeps 0 and top), then trunc +
      // 1 when the exact fraction is >= 0.5.
      const __m512 t = _mm512_min_ps(
          _mm512_max_ps(_mm512_add_ps(_mm512_mul_ps(x, r), z), _mm512_setzero_ps()), top);
      __m512i q = _mm512_cvttps_epi32(t);
      const __mmask16 up =
          _mm512_cmp_ps_mask(_mm512_sub_ps(t, _mm512_cvtepi32_ps(q)), half, _CMP_GE_OQ);
      q = _mm512_mask_add_epi32(q, up, q, one);
      if constexpr (kBits == 4) {
        // Codes 2i and 2i + 1 (< 16 each) share a 64-bit lane; its low byte
        // after q | q >> 28 is lo | hi << 4, which vpmovqb keeps.
        const __m512i pairs = _mm512_or_si512(q, _mm512_srli_epi64(q, 28));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i / 2), _mm512_cvtepi64_epi8(pairs));
      } else {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(q));
      }
      if constexpr (kStats || kStoreWq) {
        const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(q), z), s);
        if constexpr (kStoreWq) _mm512_storeu_ps(wq + i, d);
        if constexpr (kStats) {
          const __m512 e = _mm512_sub_ps(x, d);
          fw2 = _mm512_fmadd_ps(x, x, fw2);
          fe2 = _mm512_fmadd_ps(e, e, fe2);
          emax = _mm512_max_ps(emax, _mm512_abs_ps(e));
        }
      }
    }
    if constexpr (kStats) {
      if ((b + 1) % kFoldBlocks == 0 || b + 1 == blocks) {
        w2 = _mm512_add_pd(w2, _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(fw2)),
                                             _mm512_cvtps_pd(_mm512_extractf32x8_ps(fw2, 1))));
        e2 = _mm512_add_pd(e2, _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(fe2)),
                                             _mm512_cvtps_pd(_mm512_extractf32x8_ps(fe2, 1))));
        fw2 = fe2 = _mm512_setzero_ps();
      }
    }
  }
  if constexpr (kStats) {
    stats->w2 += _mm512_reduce_add_pd(w2);
    stats->e2 += _mm512_reduce_add_pd(e2);
    const float m = _mm512_reduce_max_ps(emax);
    stats->emax = stats->emax > m ? stats->emax : m;
  }
}

template <int kBits>
QUANTD_AVX512 void CodeRowBits(const float* w, int64_t k, int bs, const float* scale,
                               const float* recip, const float* zpf, uint8_t* out, RowStats* stats,
                               float* wq) {
  if (stats == nullptr) {
    CodeRowBody<kBits, false, false>(w, k, bs, scale, recip, zpf, out, stats, wq);
  } else if (wq == nullptr) {
    CodeRowBody<kBits, true, false>(w, k, bs, scale, recip, zpf, out, stats, wq);
  } else {
    CodeRowBody<kBits, true, true>(w, k, bs, scale, recip, zpf, out, stats, wq);
  }
}

QUANTD_AVX512 void CodeRowNBitsAvx512(const float* w, int64_t k, int bs, int bits,
                                      const float* scale, const float* recip, const float* zpf,
                                      uint8_t* out, RowStats* stats, float* wq) {
  if (bits == 4) {
    CodeRowBits<4>(w, k, bs, scale, recip, zpf, out, stats, wq);
  } else {
    CodeRowBits<8>(w, k, bs, scale, recip, zpf, out, stats, wq);
  }
}

// The probe products of R rows, blocked for L1: the rows and the probe are
// read in chunks of kChunk values (8 probe rows, R rows and their w': at
// most 32 KiB), and within a chunk two probe rows meet all R rows at once
// (4R accumulators; each loaded vector feeds 2 or R FMAs). Partial sums
// live in acc between chunks.
template <int R>
QUANTD_AVX512 inline void ProbeDotsBlocked(const float* x, int64_t ldp, int probe_rows,
                                           const float* const* w, const float* const* wq, int64_t k,
                                           float* y, float* yq, int64_t ldy) {
  constexpr int64_t kChunk = 512;
  constexpr int kMaxProbe = 16;
  __m512 acc[kMaxProbe][R][2];
  for (int p = 0; p < probe_rows; ++p) {
    for (int r = 0; r < R; ++r) acc[p][r][0] = acc[p][r][1] = _mm512_setzero_ps();
  }
  for (int64_t c0 = 0; c0 < k; c0 += kChunk) {
    const int64_t c1 = std::min(k, c0 + kChunk);
    int p = 0;
    for (; p + 2 <= probe_rows; p += 2) {
      __m512 a0[R], q0[R], a1[R], q1[R];
      for (int r = 0; r < R; ++r) {
        a0[r] = acc[p][r][0];
        q0[r] = acc[p][r][1];
        a1[r] = acc[p + 1][r][0];
        q1[r] = acc[p + 1][r][1];
      }
      const float* x0 = x + p * ldp;
      const float* x1 = x0 + ldp;
      for (int64_t i = c0; i < c1; i += kLanes) {
        const __m512 u = _mm512_loadu_ps(x0 + i), v = _mm512_loadu_ps(x1 + i);
        for (int r = 0; r < R; ++r) {
          const __m512 wv = _mm512_loadu_ps(w[r] + i), qv = _mm512_loadu_ps(wq[r] + i);
          a0[r] = _mm512_fmadd_ps(u, wv, a0[r]);
          q0[r] = _mm512_fmadd_ps(u, qv, q0[r]);
          a1[r] = _mm512_fmadd_ps(v, wv, a1[r]);
          q1[r] = _mm512_fmadd_ps(v, qv, q1[r]);
        }
      }
      for (int r = 0; r < R; ++r) {
        acc[p][r][0] = a0[r];
        acc[p][r][1] = q0[r];
        acc[p + 1][r][0] = a1[r];
        acc[p + 1][r][1] = q1[r];
      }
    }
    for (; p < probe_rows; ++p) {
      const float* x0 = x + p * ldp;
      for (int64_t i = c0; i < c1; i += kLanes) {
        const __m512 u = _mm512_loadu_ps(x0 + i);
        for (int r = 0; r < R; ++r) {
          acc[p][r][0] = _mm512_fmadd_ps(u, _mm512_loadu_ps(w[r] + i), acc[p][r][0]);
          acc[p][r][1] = _mm512_fmadd_ps(u, _mm512_loadu_ps(wq[r] + i), acc[p][r][1]);
        }
      }
    }
  }
  for (int p = 0; p < probe_rows; ++p) {
    for (int r = 0; r < R; ++r) {
      y[p * ldy + r] = _mm512_reduce_add_ps(acc[p][r][0]);
      yq[p * ldy + r] = _mm512_reduce_add_ps(acc[p][r][1]);
    }
  }
}

QUANTD_AVX512 void ProbeDotsRowsAvx512(const float* x, int64_t ldp, int probe_rows,
                                       const float* const* w, const float* const* wq, int rows,
                                       int64_t k, float* y, float* yq, int64_t ldy) {
  // More probe rows than the accumulators hold: in groups (never, today:
  // QualityAccumulator::kProbeRows is 8).
  for (int p0 = 0; p0 < probe_rows; p0 += 16) {
    const int pr = std::min(16, probe_rows - p0);
    const float* xp = x + p0 * ldp;
    float* yp = y + p0 * ldy;
    float* yqp = yq + p0 * ldy;
    switch (rows) {
      case 1:
        ProbeDotsBlocked<1>(xp, ldp, pr, w, wq, k, yp, yqp, ldy);
        break;
      case 2:
        ProbeDotsBlocked<2>(xp, ldp, pr, w, wq, k, yp, yqp, ldy);
        break;
      case 3:
        ProbeDotsBlocked<3>(xp, ldp, pr, w, wq, k, yp, yqp, ldy);
        break;
      default:
        ProbeDotsBlocked<4>(xp, ldp, pr, w, wq, k, yp, yqp, ldy);
        break;
    }
  }
}

}  // namespace

static_assert(kProbeBatchRows == 4, "ProbeDotsRowsAvx512 takes up to four rows");

const NBitsRowKernels kNBitsRowsAvx512 = {BlockMinMaxRowAvx512, WidenMinMaxRowAvx512,
                                          SymmetricParamsRowAvx512, CodeRowNBitsAvx512,
                                          ProbeDotsRowsAvx512};

}  // namespace quantd::core::quant::int4

#endif  // defined(__x86_64__)
