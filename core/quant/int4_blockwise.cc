#include "quantd/core/quant/int4_blockwise.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace quantd::core::quant {
namespace {

constexpr int kTileCols = 64;   // columns per tile on the row-major fast path
constexpr int kMaxBlock = 256;  // largest supported block size

// roundf (half away from zero) without a libm call, so loops vectorize.
// REQUIRES: |x| < 2^23 (callers clamp first; clamping does not change the
// final clamped code because rounding is monotonic).
inline float RoundHalfAway(float x) {
  float t = static_cast<float>(static_cast<int32_t>(x));  // trunc
  float d = x - t;                                         // exact
  t += d >= 0.5f ? 1.0f : 0.0f;
  t -= d <= -0.5f ? 1.0f : 0.0f;
  return t;
}

// Per-block quantization parameters in the form the code loops use.
struct BlockQ {
  float scale = 0;  // float(T(scale))
  float recip = 0;  // 1 / scale, or 0
  int zp = 0;       // 8 (MatMulNBits symmetric), 0 (QDQ int4) or 0..15
};

// Code of one value. MatMulNBits: clamp(roundf(v*r + zp), 0, 15).
// QDQ: clamp(int(roundf(v*r)) + zp, qmin, qmax), qmin = -8 when signed.
template <Int4Layout L>
inline int Code(float v, float recip, float zpf, int zp, int qmin, int qmax) {
  if constexpr (L == Int4Layout::kMatMulNBits) {
    float x = v * recip + zpf;
    x = x < -1.0f ? -1.0f : (x > 16.0f ? 16.0f : x);
    float q = RoundHalfAway(x);
    q = q < 0.0f ? 0.0f : (q > 15.0f ? 15.0f : q);
    return static_cast<int>(q);
  } else {
    float y = v * recip;
    y = y < -17.0f ? -17.0f : (y > 17.0f ? 17.0f : y);
    int q = static_cast<int>(RoundHalfAway(y)) + zp;
    return q < qmin ? qmin : (q > qmax ? qmax : q);
  }
}

template <typename T>
BlockQ MakeBlockQ(T scale, int zp) {
  BlockQ q;
  q.scale = ElementTraits<T>::ToFloat(scale);
  q.recip = q.scale != 0.0f ? 1.0f / q.scale : 0.0f;
  q.zp = zp;
  return q;
}

// ORT's range2scale / range2scalezp (q4_dq.cpp), float32 math.
template <typename T>
BlockQ RtnParams(float mn, float mx, const Int4Options& o, T* scale) {
  if (o.symmetric) {
    float m = std::fabs(mx) > std::fabs(mn) ? mx : mn;
    *scale = ElementTraits<T>::FromFloat(-m / 8.0f);
    return MakeBlockQ(*scale, o.layout == Int4Layout::kMatMulNBits ? 8 : 0);
  }
  mn = std::min(mn, 0.0f);
  mx = std::max(mx, 0.0f);
  float sf = (mx - mn) / 15.0f;
  float zp_fp = mn;
  if (sf != 0.0f) zp_fp = 0.0f - mn / sf;
  int zp = zp_fp < 0.0f ? 0 : (zp_fp > 15.0f ? 15 : static_cast<int>(std::roundf(zp_fp)));
  *scale = ElementTraits<T>::FromFloat(sf);
  return MakeBlockQ(*scale, zp);
}

inline int QMin(const Int4Options& o) {
  return (o.layout == Int4Layout::kQdq && o.symmetric) ? -8 : 0;
}
inline int QMax(const Int4Options& o) {
  return (o.layout == Int4Layout::kQdq && o.symmetric) ? 7 : 15;
}

// Squared error of a block under (scale, zp), as ORT dequantizes it.
template <Int4Layout L>
double BlockError(const float* v, int rows, const BlockQ& q, int qmin, int qmax) {
  const float zpf = static_cast<float>(q.zp);
  double err = 0;
  for (int i = 0; i < rows; ++i) {
    int c = Code<L>(v[i], q.recip, zpf, q.zp, qmin, qmax);
    float d = static_cast<float>(c - q.zp) * q.scale;
    double e = static_cast<double>(v[i]) - static_cast<double>(d);
    err += e * e;
  }
  return err;
}

// BlockError with the tile kernels' SIMD code path (defined below): the same
// codes and dequantized values; the double sum is taken in another order.
double BlockErrorFast(const float* v, int rows, const BlockQ& q, Int4Layout layout, int qmin,
                      int qmax);

// Least-squares refit of the scale for fixed codes (zero point fixed).
template <Int4Layout L>
float RefitScale(const float* v, int rows, const BlockQ& q, int zp, int qmin, int qmax) {
  const float zpf = static_cast<float>(q.zp);
  double num = 0, den = 0;
  for (int i = 0; i < rows; ++i) {
    int c = Code<L>(v[i], q.recip, zpf, q.zp, qmin, qmax);
    double d = c - zp;
    num += d * v[i];
    den += d * d;
  }
  return den > 0 ? static_cast<float>(num / den) : 0.0f;
}

// Least-squares fit of (scale, zero point) for fixed codes: v ~ s * (c - z),
// z rounded to an integer in [0, 15]. False when the codes are constant.
template <Int4Layout L>
bool RefitScaleAndZero(const float* v, int rows, const BlockQ& q, int qmin, int qmax, float* s_out,
                       int* zp_out) {
  const float zpf = static_cast<float>(q.zp);
  double sq = 0, sv = 0, sqq = 0, sqv = 0;
  for (int i = 0; i < rows; ++i) {
    double c = Code<L>(v[i], q.recip, zpf, q.zp, qmin, qmax);
    sq += c;
    sv += v[i];
    sqq += c * c;
    sqv += c * v[i];
  }
  double var = sqq - sq * sq / rows;
  if (var <= 0) return false;
  double s = (sqv - sq * sv / rows) / var;
  if (s == 0) return false;
  double off = (sv - s * sq) / rows;
  int zp = static_cast<int>(std::lround(-off / s));
  *zp_out = std::clamp(zp, 0, 15);
  *s_out = static_cast<float>(s);
  return true;
}

// The search: RTN first, then a grid of clipped ranges, then alternating
// refinement (codes for the scale, least-squares scale -- and zero point when
// asymmetric -- for the codes) from the best candidates. The lowest squared
// error wins; ties keep the earlier candidate, RTN first, so no block is ever
// worse than RTN.
template <typename T, Int4Layout L>
BlockQ SearchParams(const float* v, int rows, float mn, float mx, const Int4Options& o, T* scale) {
  const int qmin = QMin(o), qmax = QMax(o);
  BlockQ best = RtnParams(mn, mx, o, scale);
  double best_err = BlockErrorFast(v, rows, best, L, qmin, qmax);
  if (best_err == 0.0) return best;
  using Tr = ElementTraits<T>;
  struct Cand {
    double err;
    BlockQ q;
    T s;
  };
  constexpr int kTop = 3;
  Cand top[kTop];
  int ntop = 0;
  auto consider = [&](T s, int zp) {
    BlockQ c = MakeBlockQ(s, zp);
    if (!std::isfinite(c.scale) || c.scale == 0.0f) return;
    double e = BlockErrorFast(v, rows, c, L, qmin, qmax);
    // A candidate must win by more than summation-order noise, so no block
    // is worse than RTN in any order of summation.
    if (e < best_err * (1.0 - 1e-9)) {
      best_err = e;
      best = c;
      *scale = s;
    }
    // Keep the kTop lowest errors as starting points for the refinement.
    int pos = ntop < kTop ? ntop++ : kTop;
    if (pos == kTop) {
      if (e >= top[kTop - 1].err) return;
      pos = kTop - 1;
    }
    while (pos > 0 && top[pos - 1].err > e) {
      top[pos] = top[pos - 1];
      --pos;
    }
    top[pos] = Cand{e, c, s};
  };
  consider(*scale, best.zp);
  if (o.symmetric) {
    const int zp = L == Int4Layout::kMatMulNBits ? 8 : 0;
    const float m = std::fabs(mx) > std::fabs(mn) ? mx : mn;
    for (int i = 1; i <= 40; ++i) {
      const float f = 1.0f - 0.0125f * static_cast<float>(i);
      consider(Tr::FromFloat(-m * f / 8.0f), zp);  // extreme -> code -8
    }
    for (int i = 0; i <= 40; ++i) {
      const float f = 1.0f - 0.0125f * static_cast<float>(i);
      consider(Tr::FromFloat(m * f / 7.0f), zp);  // extreme -> code +7
    }
  } else {
    const float lo = std::min(mn, 0.0f), hi = std::max(mx, 0.0f);
    for (int a = 0; a < 10; ++a) {
      for (int b = 0; b < 10; ++b) {
        if (a == 0 && b == 0) continue;
        T s;
        BlockQ c = RtnParams<T>(lo * (1.0f - 0.04f * a), hi * (1.0f - 0.04f * b), o, &s);
        consider(s, c.zp);
      }
    }
  }
  // Alternating refinement from each of the best starting points.
  Cand starts[kTop];
  const int nstarts = ntop;
  std::copy(top, top + ntop, starts);
  for (int t = 0; t < nstarts; ++t) {
    BlockQ cur = starts[t].q;
    for (int it = 0; it < 6; ++it) {
      float s;
      int zp = cur.zp;
      if (o.symmetric) {
        s = RefitScale<L>(v, rows, cur, zp, qmin, qmax);
        if (s == 0.0f) break;
      } else if (!RefitScaleAndZero<L>(v, rows, cur, qmin, qmax, &s, &zp)) {
        break;
      }
      BlockQ next = MakeBlockQ(Tr::FromFloat(s), zp);
      if (next.scale == cur.scale && next.zp == cur.zp) break;
      consider(Tr::FromFloat(s), zp);
      cur = next;
    }
  }
  return best;
}

// Stores one block's parameters.
template <typename T>
void StoreParams(const Int4Options& o, int64_t n_cols, int64_t blocks, int64_t col, int64_t b,
                 T scale, int zp, T* scales, uint8_t* zero_points) {
  if (o.layout == Int4Layout::kMatMulNBits) {
    scales[col * blocks + b] = scale;
    if (!o.symmetric) {
      uint8_t* byte = zero_points + col * ((blocks + 1) / 2) + b / 2;
      if ((b & 1) == 0) {
        *byte = static_cast<uint8_t>(zp | (8 << 4));  // high nibble 8 until block b+1
      } else {
        *byte = static_cast<uint8_t>((*byte & 0x0f) | (zp << 4));
      }
    }
  } else {
    scales[b * n_cols + col] = scale;
    if (!o.symmetric) {
      int64_t f = b * n_cols + col;
      uint8_t* byte = zero_points + f / 2;
      int sh = (f & 1) * 4;
      *byte = static_cast<uint8_t>((*byte & ~(0x0f << sh)) | ((zp & 0x0f) << sh));
    }
  }
}

inline void StoreQdqNibble(uint8_t* packed, int64_t f, int code) {
  uint8_t* byte = packed + f / 2;
  int sh = (f & 1) * 4;
  *byte = static_cast<uint8_t>((*byte & ~(0x0f << sh)) | ((code & 0x0f) << sh));
}

// Packs one MatMulNBits block of `rows` codes (stride `stride` in `codes`).
// `carry` is the high nibble MLAS leaves in an odd tail (see header).
inline void PackNBitsBlock(const uint8_t* codes, int64_t stride, int rows, int carry,
                           uint8_t* dst) {
  int i = 0;
  for (; i + 1 < rows; i += 2) {
    dst[i / 2] = static_cast<uint8_t>(codes[i * stride] | (codes[(i + 1) * stride] << 4));
  }
  if (i < rows) dst[i / 2] = static_cast<uint8_t>(codes[i * stride] | (carry << 4));
}

// Generic path: one column at a time, any strides, RTN or search.
template <typename T, Int4Layout L>
void QuantizeGeneric(const WeightView<T>& w, const Int4Options& o, int64_t n_begin, int64_t n_end,
                     uint8_t* packed, T* scales, uint8_t* zero_points) {
  const int bs = o.block_size;
  const int64_t blocks = (w.k + bs - 1) / bs;
  const int qmin = QMin(o), qmax = QMax(o);
  float buf[kMaxBlock];
  uint8_t codes[kMaxBlock];
  for (int64_t n = n_begin; n < n_end; ++n) {
    int prev_last = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * bs;
      const int rows = static_cast<int>(std::min<int64_t>(bs, w.k - r0));
      const T* src = w.data + r0 * w.row_stride + n * w.col_stride;
      float mn = FLT_MAX, mx = -FLT_MAX;
      for (int i = 0; i < rows; ++i) {
        float v = ElementTraits<T>::ToFloat(src[i * w.row_stride]);
        buf[i] = v;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      T scale;
      BlockQ q = o.algorithm == Int4Algorithm::kSearch
                     ? SearchParams<T, L>(buf, rows, mn, mx, o, &scale)
                     : RtnParams(mn, mx, o, &scale);
      StoreParams(o, w.n, blocks, n, b, scale, q.zp, scales, zero_points);
      const float zpf = static_cast<float>(q.zp);
      if constexpr (L == Int4Layout::kMatMulNBits) {
        for (int i = 0; i < rows; ++i) {
          codes[i] = static_cast<uint8_t>(Code<L>(buf[i], q.recip, zpf, q.zp, qmin, qmax));
        }
        int carry = rows >= 2 ? codes[rows - 2] : ((b & 1) ? prev_last : 0);
        PackNBitsBlock(codes, 1, rows, carry, packed + (n * blocks + b) * (bs / 2));
        prev_last = codes[rows - 1];
      } else {
        for (int i = 0; i < rows; ++i) {
          int c = Code<L>(buf[i], q.recip, zpf, q.zp, qmin, qmax);
          StoreQdqNibble(packed, (r0 + i) * w.n + n, c);
        }
      }
    }
  }
}

// ---- Tile kernels for the row-major RTN path: a tile is `rows` rows of
// kTileCols contiguous floats (stride `ld`). Scalar, SSE2 (x86-64 baseline)
// and AVX2 variants run the same float operations in the same order, so they
// produce identical bits.
struct CodeParams {
  float lo, hi;      // clamp of the pre-rounding value (see Code())
  float qlo, qhi;    // code range
  bool zp_inside;    // MatMulNBits: roundf(v*r + zp); QDQ: roundf(v*r) + zp
};

inline CodeParams MakeCodeParams(Int4Layout layout, int qmin, int qmax) {
  if (layout == Int4Layout::kMatMulNBits) return {-1.0f, 16.0f, 0.0f, 15.0f, true};
  return {-17.0f, 17.0f, static_cast<float>(qmin), static_cast<float>(qmax), false};
}

inline float CodeScalar(float v, float r, float z, const CodeParams& p) {
  float x = v * r;
  if (p.zp_inside) x = x + z;
  x = x < p.lo ? p.lo : (x > p.hi ? p.hi : x);
  float q = RoundHalfAway(x);
  if (!p.zp_inside) q = q + z;
  return q < p.qlo ? p.qlo : (q > p.qhi ? p.qhi : q);
}

void MinMaxTileScalar(const float* src, int64_t ld, int rows, int tn, float* mn, float* mx) {
  for (int i = 0; i < rows; ++i) {
    const float* v = src + i * ld;
    for (int j = 0; j < tn; ++j) {
      mn[j] = v[j] < mn[j] ? v[j] : mn[j];
      mx[j] = v[j] > mx[j] ? v[j] : mx[j];
    }
  }
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

#if defined(__x86_64__)
// minps(a, b) = a < b ? a : b and maxps(a, b) = a > b ? a : b: the same
// selections as the scalar code (MinMaxRows below).
inline __m128 CodeSse2(__m128 v, __m128 r, __m128 z, const CodeParams& p) {
  __m128 x = _mm_mul_ps(v, r);
  if (p.zp_inside) x = _mm_add_ps(x, z);
  x = _mm_min_ps(_mm_max_ps(x, _mm_set1_ps(p.lo)), _mm_set1_ps(p.hi));
  __m128 t = _mm_cvtepi32_ps(_mm_cvttps_epi32(x));
  __m128 d = _mm_sub_ps(x, t);
  const __m128 one = _mm_set1_ps(1.0f);
  t = _mm_add_ps(t, _mm_and_ps(_mm_cmpge_ps(d, _mm_set1_ps(0.5f)), one));
  t = _mm_sub_ps(t, _mm_and_ps(_mm_cmple_ps(d, _mm_set1_ps(-0.5f)), one));
  if (!p.zp_inside) t = _mm_add_ps(t, z);
  return _mm_min_ps(_mm_max_ps(t, _mm_set1_ps(p.qlo)), _mm_set1_ps(p.qhi));
}

void CodeTileSse2(const float* src, int64_t ld, int rows, const float* r, const float* z,
                  const CodeParams& p, uint8_t* codes) {
  for (int i = 0; i < rows; ++i) {
    const float* v = src + i * ld;
    uint8_t* out = codes + i * kTileCols;
    for (int j = 0; j < kTileCols; j += 16) {
      __m128i a = _mm_cvttps_epi32(CodeSse2(_mm_loadu_ps(v + j), _mm_load_ps(r + j), _mm_load_ps(z + j), p));
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
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_setzero_ps()), _mm256_set1_ps(15.0f));
  __m256i t = _mm256_cvttps_epi32(x);
  __m256 d = _mm256_sub_ps(x, _mm256_cvtepi32_ps(t));
  __m256 up = _mm256_cmp_ps(d, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  return _mm256_sub_epi32(t, _mm256_castps_si256(up));
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
    __m256 s = _mm256_div_ps(_mm256_xor_ps(m, sign), _mm256_set1_ps(8.0f));
    __m256 nz = _mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_NEQ_OQ);
    _mm256_store_ps(scale + j, s);
    _mm256_store_ps(recip + j, _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), s), nz));
    _mm256_store_ps(zpf + j, _mm256_set1_ps(8.0f));
  }
}

bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

#if defined(__x86_64__)
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
#endif

double BlockErrorFast(const float* v, int rows, const BlockQ& q, Int4Layout layout, int qmin,
                      int qmax) {
#if defined(__x86_64__)
  if (HasAvx2()) return BlockErrorAvx2(v, rows, q, MakeCodeParams(layout, qmin, qmax));
#endif
  return layout == Int4Layout::kMatMulNBits
             ? BlockError<Int4Layout::kMatMulNBits>(v, rows, q, qmin, qmax)
             : BlockError<Int4Layout::kQdq>(v, rows, q, qmin, qmax);
}

// Running min/max of `width` columns over `rows` rows, row after row (one
// input stream at a time). SIMD over the columns; identical selections.
#if defined(__x86_64__)
__attribute__((target("avx2"))) int MinMaxRowsAvx2(const float* src, int64_t ld, int rows,
                                                   int width, float* mn, float* mx) {
  const int vec = width & ~7;
  for (int i = 0; i < rows; ++i) {
    const float* v = src + i * ld;
    for (int j = 0; j < vec; j += 8) {
      __m256 x = _mm256_loadu_ps(v + j);
      _mm256_storeu_ps(mn + j, _mm256_min_ps(x, _mm256_loadu_ps(mn + j)));
      _mm256_storeu_ps(mx + j, _mm256_max_ps(x, _mm256_loadu_ps(mx + j)));
    }
  }
  return vec;
}

int MinMaxRowsSse2(const float* src, int64_t ld, int rows, int width, float* mn, float* mx) {
  const int vec = width & ~3;
  for (int i = 0; i < rows; ++i) {
    const float* v = src + i * ld;
    for (int j = 0; j < vec; j += 4) {
      __m128 x = _mm_loadu_ps(v + j);
      _mm_storeu_ps(mn + j, _mm_min_ps(x, _mm_loadu_ps(mn + j)));
      _mm_storeu_ps(mx + j, _mm_max_ps(x, _mm_loadu_ps(mx + j)));
    }
  }
  return vec;
}
#endif

void MinMaxRows(const float* src, int64_t ld, int rows, int width, float* mn, float* mx) {
  int done = 0;
#if defined(__x86_64__)
  done = HasAvx2() ? MinMaxRowsAvx2(src, ld, rows, width, mn, mx)
                   : MinMaxRowsSse2(src, ld, rows, width, mn, mx);
#endif
  if (done < width) MinMaxTileScalar(src + done, ld, rows, width - done, mn + done, mx + done);
}

void CodeTile(const float* src, int64_t ld, int rows, int tn, const float* r, const float* z,
              const CodeParams& p, uint8_t* codes) {
#if defined(__x86_64__)
  if (tn == kTileCols) {
    if (HasAvx2()) {
      CodeTileAvx2(src, ld, rows, r, z, p, codes);
    } else {
      CodeTileSse2(src, ld, rows, r, z, p, codes);
    }
    return;
  }
#endif
  CodeTileScalar(src, ld, rows, tn, r, z, p, codes);
}

#if defined(__x86_64__)
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
        in[r] = r < n ? _mm_load_si128(reinterpret_cast<const __m128i*>(pairs + (p0 + r) * kTileCols + g))
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
#endif

// Code MLAS left in its scratch for row K-2 (the odd-K carry) when row K-1
// opens block b (odd) alone: block b-1's parameters are already stored.
template <typename T, Int4Layout L>
int CarryFromPreviousBlock(const WeightView<T>& w, const Int4Options& o, int64_t col,
                           int64_t blocks, const T* scales, const uint8_t* zero_points) {
  const int64_t b = blocks - 2;
  BlockQ q = MakeBlockQ(scales[col * blocks + b], 8);
  if (!o.symmetric) q.zp = (zero_points[col * ((blocks + 1) / 2) + b / 2] >> ((b & 1) * 4)) & 0xf;
  const float v = ElementTraits<T>::ToFloat(w.data[(w.k - 2) * w.row_stride + col * w.col_stride]);
  return Code<L>(v, q.recip, static_cast<float>(q.zp), q.zp, QMin(o), QMax(o));
}

// Fast RTN path for row-major weights (col_stride == 1): blocks of rows in
// the outer loop, tiles of columns inside, so the input streams row by row
// and the inner loops run over contiguous columns (vectorized).
template <typename T, Int4Layout L>
void QuantizeRowMajorRtn(const WeightView<T>& w, const Int4Options& o, int64_t n_begin,
                         int64_t n_end, uint8_t* packed, T* scales, uint8_t* zero_points) {
  const int bs = o.block_size;
  const int64_t blocks = (w.k + bs - 1) / bs;
  const int qmin = QMin(o), qmax = QMax(o);
  const CodeParams cp = MakeCodeParams(L, qmin, qmax);
  // Rows are scanned in super-tiles of kSuper columns. FP32: one tile, so the
  // min/max pass brings the tile into L1 and the code pass reads it from
  // there (a whole-row-width super-tile streams better but re-reads 512 KiB
  // from L2); the next tile is prefetched by hand. FP16 rows are widened tile
  // by tile into `wide` first.
  constexpr bool kFloat = std::is_same_v<T, float>;
  constexpr int kSuper = kTileCols;
  constexpr int kPrefetchTiles = 1;
  alignas(64) float mn[kSuper], mx[kSuper];
  alignas(64) float recip[kTileCols], zpf[kTileCols];
  alignas(64) uint8_t codes[kMaxBlock * kTileCols];  // [row][col]
  alignas(64) float wide[kFloat ? 1 : kMaxBlock * kTileCols];
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * bs;
    const int rows = static_cast<int>(std::min<int64_t>(bs, w.k - r0));
    for (int64_t s0 = n_begin; s0 < n_end; s0 += kSuper) {
      const int sw = static_cast<int>(std::min<int64_t>(kSuper, n_end - s0));
      const float* base;
      int64_t ld;
      if constexpr (kFloat) {
        base = w.data + r0 * w.row_stride + s0;
        ld = w.row_stride;
      } else {
        for (int i = 0; i < rows; ++i) {
          const T* src = w.data + (r0 + i) * w.row_stride + s0;
          for (int j = 0; j < sw; ++j) wide[i * kTileCols + j] = ElementTraits<T>::ToFloat(src[j]);
        }
        base = wide;
        ld = kTileCols;
      }
      for (int j = 0; j < sw; ++j) {
        mn[j] = FLT_MAX;
        mx[j] = -FLT_MAX;
      }
#if defined(__x86_64__)
      if constexpr (kFloat) {
        // The tile's rows are kSuper-column pieces of `rows` streams 4 * ld
        // bytes apart: too many for the hardware prefetcher, so fetch the
        // tile kPrefetchTiles ahead (within this block of rows) ourselves.
        const int64_t ahead = s0 + kPrefetchTiles * kSuper;
        if (ahead < n_end) {
          const int pw = static_cast<int>(std::min<int64_t>(kSuper, n_end - ahead));
          const float* pf = base + kPrefetchTiles * kSuper;
          for (int i = 0; i < rows; ++i) {
            for (int j = 0; j < pw; j += 16) {
              _mm_prefetch(reinterpret_cast<const char*>(pf + i * ld + j), _MM_HINT_T0);
            }
          }
        }
      }
#endif
      MinMaxRows(base, ld, rows, sw, mn, mx);
    for (int64_t c0 = s0; c0 < s0 + sw; c0 += kTileCols) {
      const int tn = static_cast<int>(std::min<int64_t>(kTileCols, s0 + sw - c0));
      const float* tile = base + (c0 - s0);
      bool params_done = false;
#if defined(__x86_64__)
      if constexpr (kFloat && L == Int4Layout::kMatMulNBits) {
        if (o.symmetric && tn == kTileCols && HasAvx2()) {
          alignas(32) float sc[kTileCols];
          SymmetricParamsAvx2(mn + (c0 - s0), mx + (c0 - s0), sc, recip, zpf);
          for (int j = 0; j < kTileCols; ++j) scales[(c0 + j) * blocks + b] = sc[j];
          params_done = true;
        }
      }
#endif
      for (int j = 0; !params_done && j < tn; ++j) {
        T scale;
        BlockQ q = RtnParams(mn[c0 - s0 + j], mx[c0 - s0 + j], o, &scale);
        StoreParams(o, w.n, blocks, c0 + j, b, scale, q.zp, scales, zero_points);
        recip[j] = q.recip;
        zpf[j] = static_cast<float>(q.zp);
      }
      CodeTile(tile, ld, rows, tn, recip, zpf, cp, codes);
#if defined(__x86_64__)
      if constexpr (L == Int4Layout::kMatMulNBits) {
        if (tn == kTileCols && rows == bs) {
          PackNBitsTileSse2(codes, bs, packed + (c0 * blocks + b) * (bs / 2), blocks * (bs / 2));
          continue;
        }
      }
#endif
      if constexpr (L == Int4Layout::kMatMulNBits) {
        for (int j = 0; j < tn; ++j) {
          uint8_t* dst = packed + ((c0 + j) * blocks + b) * (bs / 2);
          const uint8_t* c = codes + j;
          int i = 0;
          for (; i + 1 < rows; i += 2) {
            dst[i / 2] = static_cast<uint8_t>(c[i * kTileCols] | (c[(i + 1) * kTileCols] << 4));
          }
          if (i < rows) {
            int carry = rows >= 2 ? c[(rows - 2) * kTileCols]
                        : (b & 1) ? CarryFromPreviousBlock<T, L>(w, o, c0 + j, blocks, scales,
                                                                 zero_points)
                                  : 0;
            dst[i / 2] = static_cast<uint8_t>(c[i * kTileCols] | (carry << 4));
          }
        }
      } else {
        for (int i = 0; i < rows; ++i) {
          const int64_t f0 = (r0 + i) * w.n + c0;
          const uint8_t* in = codes + i * kTileCols;
          int j = 0;
          if (f0 & 1) {
            StoreQdqNibble(packed, f0, in[0]);
            j = 1;
          }
          for (; j + 1 < tn; j += 2) {
            packed[(f0 + j) / 2] = static_cast<uint8_t>((in[j] & 0x0f) | ((in[j + 1] & 0x0f) << 4));
          }
          if (j < tn) StoreQdqNibble(packed, f0 + j, in[j]);
        }
      }
    }
    }
  }
}

template <typename T, Int4Layout L>
void QuantizeDispatch(const WeightView<T>& w, const Int4Options& o, int64_t n_begin, int64_t n_end,
                      uint8_t* packed, T* scales, uint8_t* zero_points) {
  if (o.algorithm == Int4Algorithm::kRtn && w.col_stride == 1) {
    QuantizeRowMajorRtn<T, L>(w, o, n_begin, n_end, packed, scales, zero_points);
  } else {
    QuantizeGeneric<T, L>(w, o, n_begin, n_end, packed, scales, zero_points);
  }
}

}  // namespace

Int4Sizes ComputeInt4Sizes(int64_t k, int64_t n, const Int4Options& o) {
  Int4Sizes s;
  s.blocks = (k + o.block_size - 1) / o.block_size;
  s.scale_count = n * s.blocks;
  if (o.layout == Int4Layout::kMatMulNBits) {
    s.packed_bytes = n * s.blocks * (o.block_size / 2);
    s.zero_point_bytes = o.symmetric ? 0 : n * ((s.blocks + 1) / 2);
  } else {
    s.packed_bytes = (k * n + 1) / 2;
    s.zero_point_bytes = o.symmetric ? 0 : (s.blocks * n + 1) / 2;
  }
  return s;
}

template <typename T>
void QuantizeInt4(const WeightView<T>& w, const Int4Options& o, int64_t n_begin, int64_t n_end,
                  uint8_t* packed, T* scales, uint8_t* zero_points) {
  if (o.layout == Int4Layout::kMatMulNBits) {
    QuantizeDispatch<T, Int4Layout::kMatMulNBits>(w, o, n_begin, n_end, packed, scales,
                                                  zero_points);
  } else {
    QuantizeDispatch<T, Int4Layout::kQdq>(w, o, n_begin, n_end, packed, scales, zero_points);
  }
}

template <typename T>
void DequantizeInt4(int64_t k, int64_t n, const Int4Options& o, const uint8_t* packed,
                    const T* scales, const uint8_t* zero_points, int64_t n_begin, int64_t n_end,
                    float* out) {
  const int bs = o.block_size;
  const int64_t blocks = (k + bs - 1) / bs;
  const bool nbits = o.layout == Int4Layout::kMatMulNBits;
  for (int64_t col = n_begin; col < n_end; ++col) {
    float* dst = out + (col - n_begin) * k;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * bs;
      const int rows = static_cast<int>(std::min<int64_t>(bs, k - r0));
      float s;
      int zp;
      if (nbits) {
        s = ElementTraits<T>::ToFloat(scales[col * blocks + b]);
        zp = o.symmetric ? 8 : (zero_points[col * ((blocks + 1) / 2) + b / 2] >> ((b & 1) * 4)) & 0xf;
        const uint8_t* src = packed + (col * blocks + b) * (bs / 2);
        for (int i = 0; i < rows; ++i) {
          int q = (src[i / 2] >> ((i & 1) * 4)) & 0xf;
          dst[r0 + i] = static_cast<float>(q - zp) * s;
        }
      } else {
        s = ElementTraits<T>::ToFloat(scales[b * n + col]);
        if (o.symmetric) {
          zp = 0;
        } else {
          int64_t f = b * n + col;
          zp = (zero_points[f / 2] >> ((f & 1) * 4)) & 0xf;
        }
        for (int i = 0; i < rows; ++i) {
          int64_t f = (r0 + i) * n + col;
          int q = (packed[f / 2] >> ((f & 1) * 4)) & 0xf;
          if (o.symmetric && q >= 8) q -= 16;
          dst[r0 + i] = static_cast<float>(q - zp) * s;
        }
      }
    }
  }
}

template void QuantizeInt4<float>(const WeightView<float>&, const Int4Options&, int64_t, int64_t,
                                  uint8_t*, float*, uint8_t*);
template void QuantizeInt4<Half>(const WeightView<Half>&, const Int4Options&, int64_t, int64_t,
                                 uint8_t*, Half*, uint8_t*);
template void DequantizeInt4<float>(int64_t, int64_t, const Int4Options&, const uint8_t*,
                                    const float*, const uint8_t*, int64_t, int64_t, float*);
template void DequantizeInt4<Half>(int64_t, int64_t, const Int4Options&, const uint8_t*,
                                   const Half*, const uint8_t*, int64_t, int64_t, float*);

}  // namespace quantd::core::quant
