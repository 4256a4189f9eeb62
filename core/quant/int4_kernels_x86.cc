// x86-64 INT4 tile kernels: SSE2 (the x86-64 baseline) and AVX2 (compiled
// with a target attribute; called only at CpuLevel::kAvx2). Each runs the
// scalar variant's float operations in the same order, so every variant
// writes the same bits (int4_kernels.h).
#include "int4_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace quantd::core::quant::int4 {
namespace {

// minps(a, b) = a < b ? a : b and maxps(a, b) = a > b ? a : b: the same
// selections as the scalar code (MinMaxRowsScalar).
inline __m128 CodeSse2(__m128 v, __m128 r, __m128 z, const CodeParams& p) {
  __m128 x = _mm_mul_ps(v, r);
  if (p.zp_inside) x = _mm_add_ps(x, z);
  x = _mm_min_ps(_mm_max_ps(x, _mm_set1_ps(p.lo)), _mm_set1_ps(p.hi));
  __m128 t = RoundHalfAwaySse2(x);
  if (!p.zp_inside) t = _mm_add_ps(t, z);
  return _mm_min_ps(_mm_max_ps(t, _mm_set1_ps(p.qlo)), _mm_set1_ps(p.qhi));
}

__attribute__((target("avx2"))) inline __m256 CodeAvx2(__m256 v, __m256 r, __m256 z,
                                                       const CodeParams& p) {
  __m256 x = _mm256_mul_ps(v, r);
  if (p.zp_inside) x = _mm256_add_ps(x, z);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(p.lo)), _mm256_set1_ps(p.hi));
  __m256 t = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(x));
  __m256 d = _mm256_sub_ps(x, t);
  const __m256 one = _mm256_set1_ps(1.0f);
  t = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(d, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one));
  t = _mm256_sub_ps(t, _mm256_and_ps(_mm256_cmp_ps(d, _mm256_set1_ps(-0.5f), _CMP_LE_OQ), one));
  if (!p.zp_inside) t = _mm256_add_ps(t, z);
  return _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(p.qlo)), _mm256_set1_ps(p.qhi));
}

// MatMulNBits code as int32: clamp(roundf(v*r + z), 0, 15). Rounding is
// monotonic with roundf(0) = 0 and roundf(15) = 15, so clamping x to [0, 15]
// before rounding gives the same code; on [0, 15] roundf is trunc(x) + 1
// exactly when x - trunc(x) >= 0.5 (the difference is exact). cmp gives -1
// for true, so the +1 is an integer subtract. Same float ops (mul, add) as
// the reference, no FMA.
__attribute__((target("avx2"))) inline __m256i CodeNBitsAvx2(__m256 v, __m256 r, __m256 z) {
  __m256 x = _mm256_add_ps(_mm256_mul_ps(v, r), z);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_setzero_ps()),
                    _mm256_set1_ps(static_cast<float>(Uint4Bits::kMax)));
  __m256i t = _mm256_cvttps_epi32(x);
  __m256 d = _mm256_sub_ps(x, _mm256_cvtepi32_ps(t));
  __m256 up = _mm256_cmp_ps(d, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  return _mm256_sub_epi32(t, _mm256_castps_si256(up));
}

// 16 rows of 16 bytes -> 16 columns of 16 bytes (SSE2 unpack network).
inline void Transpose16x16(const __m128i in[16], __m128i out[16]) {
  __m128i b[16], c[16], d[8], e[8];
  for (int i = 0; i < 8; ++i) {
    b[2 * i] = _mm_unpacklo_epi8(in[2 * i], in[2 * i + 1]);
    b[2 * i + 1] = _mm_unpackhi_epi8(in[2 * i], in[2 * i + 1]);
  }
  for (int q = 0; q < 4; ++q) {  // rows 4q..4q+3
    c[4 * q + 0] = _mm_unpacklo_epi16(b[4 * q + 0], b[4 * q + 2]);
    c[4 * q + 1] = _mm_unpackhi_epi16(b[4 * q + 0], b[4 * q + 2]);
    c[4 * q + 2] = _mm_unpacklo_epi16(b[4 * q + 1], b[4 * q + 3]);
    c[4 * q + 3] = _mm_unpackhi_epi16(b[4 * q + 1], b[4 * q + 3]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 8h..8h+7
    __m128i* o = h == 0 ? d : e;
    const __m128i* x = c + 8 * h;
    for (int k = 0; k < 4; ++k) {
      o[2 * k] = _mm_unpacklo_epi32(x[k], x[k + 4]);
      o[2 * k + 1] = _mm_unpackhi_epi32(x[k], x[k + 4]);
    }
  }
  for (int k = 0; k < 8; ++k) {
    out[2 * k] = _mm_unpacklo_epi64(d[k], e[k]);
    out[2 * k + 1] = _mm_unpackhi_epi64(d[k], e[k]);
  }
}

}  // namespace

void CodeTileSse2(const float* src, int64_t ld, int rows, const float* r, const float* z,
                  const CodeParams& p, uint8_t* codes) {
  for (int i = 0; i < rows; ++i) {
    const float* v = src + i * ld;
    uint8_t* out = codes + i * kTileCols;
    for (int j = 0; j < kTileCols; j += 16) {
      __m128i a = _mm_cvttps_epi32(
          CodeSse2(_mm_loadu_ps(v + j), _mm_load_ps(r + j), _mm_load_ps(z + j), p));
      __m128i b = _mm_cvttps_epi32(
          CodeSse2(_mm_loadu_ps(v + j + 4), _mm_load_ps(r + j + 4), _mm_load_ps(z + j + 4), p));
      __m128i c = _mm_cvttps_epi32(
          CodeSse2(_mm_loadu_ps(v + j + 8), _mm_load_ps(r + j + 8), _mm_load_ps(z + j + 8), p));
      __m128i d = _mm_cvttps_epi32(
          CodeSse2(_mm_loadu_ps(v + j + 12), _mm_load_ps(r + j + 12), _mm_load_ps(z + j + 12), p));
      __m128i ab = _mm_packs_epi32(a, b), cd = _mm_packs_epi32(c, d);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), _mm_packs_epi16(ab, cd));
    }
  }
}

__attribute__((target("avx2"))) void CodeTileAvx2(const float* src, int64_t ld, int rows,
                                                  const float* r, const float* z,
                                                  const CodeParams& p, uint8_t* codes) {
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  if (p.zp_inside) {
    for (int i = 0; i < rows; ++i) {
      const float* v = src + i * ld;
      uint8_t* out = codes + i * kTileCols;
      for (int j = 0; j < kTileCols; j += 32) {
        __m256i q[4];
        for (int k = 0; k < 4; ++k) {
          q[k] = CodeNBitsAvx2(_mm256_loadu_ps(v + j + 8 * k), _mm256_load_ps(r + j + 8 * k),
                               _mm256_load_ps(z + j + 8 * k));
        }
        __m256i ab = _mm256_packs_epi32(q[0], q[1]), cd = _mm256_packs_epi32(q[2], q[3]);
        __m256i bytes = _mm256_packs_epi16(ab, cd);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j),
                            _mm256_permutevar8x32_epi32(bytes, order));
      }
    }
    return;
  }
  for (int i = 0; i < rows; ++i) {
    const float* v = src + i * ld;
    uint8_t* out = codes + i * kTileCols;
    for (int j = 0; j < kTileCols; j += 32) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k) {
        q[k] = _mm256_cvttps_epi32(CodeAvx2(_mm256_loadu_ps(v + j + 8 * k),
                                            _mm256_load_ps(r + j + 8 * k),
                                            _mm256_load_ps(z + j + 8 * k), p));
      }
      // packs work per 128-bit lane: pack, pack, then restore the order.
      __m256i ab = _mm256_packs_epi32(q[0], q[1]), cd = _mm256_packs_epi32(q[2], q[3]);
      __m256i bytes = _mm256_packs_epi16(ab, cd);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j),
                          _mm256_permutevar8x32_epi32(bytes, order));
    }
  }
}

// RtnParams + MakeBlockQ of kTileCols symmetric MatMulNBits FP32 blocks:
// m = |mx| > |mn| ? mx : mn (a tie picks mn), scale = -m / 8,
// recip = scale != 0 ? 1 / scale : 0, zp = 8. divps is correctly rounded
// like the scalar division, so the bits are the same.
__attribute__((target("avx2"))) void SymmetricParamsAvx2(const float* mn, const float* mx,
                                                         float* scale, float* recip, float* zpf) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int j = 0; j < kTileCols; j += 8) {
    __m256 lo = _mm256_load_ps(mn + j), hi = _mm256_load_ps(mx + j);
    __m256 gt = _mm256_cmp_ps(_mm256_andnot_ps(sign, hi), _mm256_andnot_ps(sign, lo), _CMP_GT_OQ);
    __m256 m = _mm256_blendv_ps(lo, hi, gt);
    __m256 s =
        _mm256_div_ps(_mm256_xor_ps(m, sign), _mm256_set1_ps(static_cast<float>(-Int4Bits::kMin)));
    __m256 nz = _mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_NEQ_OQ);
    _mm256_store_ps(scale + j, s);
    _mm256_store_ps(recip + j, _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), s), nz));
    _mm256_store_ps(zpf + j, _mm256_set1_ps(static_cast<float>(kNBitsSymmetricZeroPoint)));
  }
}

__attribute__((target("avx2"))) double BlockErrorAvx2(const float* v, int rows, const BlockQ& q,
                                                      const CodeParams& p) {
  const __m256 r = _mm256_set1_ps(q.recip), z = _mm256_set1_ps(static_cast<float>(q.zp));
  const __m256 s = _mm256_set1_ps(q.scale);
  __m256d acc = _mm256_setzero_pd();
  int i = 0;
  for (; i + 8 <= rows; i += 8) {
    __m256 x = _mm256_loadu_ps(v + i);
    __m256 d = _mm256_mul_ps(_mm256_sub_ps(CodeAvx2(x, r, z, p), z), s);
    __m256d e0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)),
                               _mm256_cvtps_pd(_mm256_castps256_ps128(d)));
    __m256d e1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)),
                               _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1)));
    acc = _mm256_add_pd(acc, _mm256_add_pd(_mm256_mul_pd(e0, e0), _mm256_mul_pd(e1, e1)));
  }
  alignas(32) double part[4];
  _mm256_store_pd(part, acc);
  double err = (part[0] + part[1]) + (part[2] + part[3]);
  for (; i < rows; ++i) {
    float d = (CodeScalar(v[i], q.recip, static_cast<float>(q.zp), p) - static_cast<float>(q.zp)) *
              q.scale;
    double e = static_cast<double>(v[i]) - static_cast<double>(d);
    err += e * e;
  }
  return err;
}

// Running min/max, SIMD over the columns; the same selections as the scalar
// variant (minps(a, b) = a < b ? a : b).
__attribute__((target("avx2"))) int MinMaxRowsAvx2(const float* src, int64_t ld, int rows,
                                                   int width, float* mn, float* mx, bool* nan) {
  const int vec = width & ~7;
  __m256 unordered = _mm256_setzero_ps();
  for (int i = 0; i < rows; ++i) {
    const float* v = src + i * ld;
    for (int j = 0; j < vec; j += 8) {
      __m256 x = _mm256_loadu_ps(v + j);
      _mm256_storeu_ps(mn + j, _mm256_min_ps(x, _mm256_loadu_ps(mn + j)));
      _mm256_storeu_ps(mx + j, _mm256_max_ps(x, _mm256_loadu_ps(mx + j)));
      unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    }
  }
  if (_mm256_movemask_ps(unordered) != 0) *nan = true;
  return vec;
}

int MinMaxRowsSse2(const float* src, int64_t ld, int rows, int width, float* mn, float* mx,
                   bool* nan) {
  const int vec = width & ~3;
  __m128 unordered = _mm_setzero_ps();
  for (int i = 0; i < rows; ++i) {
    const float* v = src + i * ld;
    for (int j = 0; j < vec; j += 4) {
      __m128 x = _mm_loadu_ps(v + j);
      _mm_storeu_ps(mn + j, _mm_min_ps(x, _mm_loadu_ps(mn + j)));
      _mm_storeu_ps(mx + j, _mm_max_ps(x, _mm_loadu_ps(mx + j)));
      unordered = _mm_or_ps(unordered, _mm_cmpunord_ps(x, x));
    }
  }
  if (_mm_movemask_ps(unordered) != 0) *nan = true;
  return vec;
}

// Packs a full tile (kTileCols columns) of one full block (bs rows, bs >= 16)
// into MatMulNBits blocks: dst for column j is dst0 + j * col_stride.
void PackNBitsTileSse2(const uint8_t* codes, int bs, uint8_t* dst0, int64_t col_stride) {
  alignas(16) uint8_t pairs[kMaxBlock / 2 * kTileCols];  // [pair][col]
  const int npairs = bs / 2;
  for (int p = 0; p < npairs; ++p) {
    const uint8_t* lo = codes + (2 * p) * kTileCols;
    const uint8_t* hi = codes + (2 * p + 1) * kTileCols;
    for (int j = 0; j < kTileCols; j += 16) {
      __m128i l = _mm_load_si128(reinterpret_cast<const __m128i*>(lo + j));
      __m128i h = _mm_load_si128(reinterpret_cast<const __m128i*>(hi + j));
      _mm_store_si128(reinterpret_cast<__m128i*>(pairs + p * kTileCols + j),
                      _mm_or_si128(l, _mm_slli_epi16(h, 4)));
    }
  }
  __m128i in[16], out[16];
  for (int p0 = 0; p0 < npairs; p0 += 16) {
    const int n = std::min(16, npairs - p0);
    for (int g = 0; g < kTileCols; g += 16) {
      for (int r = 0; r < 16; ++r) {
        in[r] =
            r < n
                ? _mm_load_si128(reinterpret_cast<const __m128i*>(pairs + (p0 + r) * kTileCols + g))
                : _mm_setzero_si128();
      }
      Transpose16x16(in, out);
      for (int j = 0; j < 16; ++j) {
        uint8_t* dst = dst0 + (g + j) * col_stride + p0;
        if (n == 16) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), out[j]);
        } else {
          _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), out[j]);  // bs 16: 8 bytes
        }
      }
    }
  }
}

// The error sums are the shared body, vectorized 8-wide by the compiler at
// this target. The probe products of a full tile run register-blocked: two
// probe rows by 16 columns of X W and X W' stay in 8 registers over all
// rows of the tile (FMA: these are report figures, not output bytes).
__attribute__((target("avx2,fma"))) void TileStatsAvx2(const float* src, int64_t ld, int rows,
                                                       int tn, const uint8_t* codes, const float* s,
                                                       const float* z, const TileStatsArgs& a,
                                                       float* w2, float* e2, float* emax) {
  if (a.probe == nullptr || tn != kTileCols || (a.probe_rows & 1) != 0) {
    TileStatsBody(src, ld, rows, tn, codes, s, z, a, w2, e2, emax);
    return;
  }
  alignas(32) float wq[kMaxBlock * kTileCols];
  TileErrorBody(src, ld, rows, tn, codes, s, z, w2, e2, emax, wq);
  for (int p = 0; p < a.probe_rows; p += 2) {
    const float* x0 = a.probe + p * a.ldp;
    const float* x1 = x0 + a.ldp;
    float* y0 = a.y + p * a.ldy;
    float* y1 = y0 + a.ldy;
    float* q0 = a.yq + p * a.ldy;
    float* q1 = q0 + a.ldy;
    for (int j = 0; j < kTileCols; j += 16) {
      __m256 ya0 = _mm256_loadu_ps(y0 + j), yb0 = _mm256_loadu_ps(y0 + j + 8);
      __m256 ya1 = _mm256_loadu_ps(y1 + j), yb1 = _mm256_loadu_ps(y1 + j + 8);
      __m256 qa0 = _mm256_loadu_ps(q0 + j), qb0 = _mm256_loadu_ps(q0 + j + 8);
      __m256 qa1 = _mm256_loadu_ps(q1 + j), qb1 = _mm256_loadu_ps(q1 + j + 8);
      for (int i = 0; i < rows; ++i) {
        const __m256 b0 = _mm256_broadcast_ss(x0 + i), b1 = _mm256_broadcast_ss(x1 + i);
        const __m256 wa = _mm256_loadu_ps(src + i * ld + j);
        const __m256 wb = _mm256_loadu_ps(src + i * ld + j + 8);
        const __m256 va = _mm256_load_ps(wq + i * kTileCols + j);
        const __m256 vb = _mm256_load_ps(wq + i * kTileCols + j + 8);
        ya0 = _mm256_fmadd_ps(b0, wa, ya0);
        yb0 = _mm256_fmadd_ps(b0, wb, yb0);
        ya1 = _mm256_fmadd_ps(b1, wa, ya1);
        yb1 = _mm256_fmadd_ps(b1, wb, yb1);
        qa0 = _mm256_fmadd_ps(b0, va, qa0);
        qb0 = _mm256_fmadd_ps(b0, vb, qb0);
        qa1 = _mm256_fmadd_ps(b1, va, qa1);
        qb1 = _mm256_fmadd_ps(b1, vb, qb1);
      }
      _mm256_storeu_ps(y0 + j, ya0);
      _mm256_storeu_ps(y0 + j + 8, yb0);
      _mm256_storeu_ps(y1 + j, ya1);
      _mm256_storeu_ps(y1 + j + 8, yb1);
      _mm256_storeu_ps(q0 + j, qa0);
      _mm256_storeu_ps(q0 + j + 8, qb0);
      _mm256_storeu_ps(q1 + j, qa1);
      _mm256_storeu_ps(q1 + j + 8, qb1);
    }
  }
}

}  // namespace quantd::core::quant::int4

#endif  // defined(__x86_64__)
