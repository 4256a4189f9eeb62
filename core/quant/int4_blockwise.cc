#include "quantd/core/quant/int4_blockwise.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <type_traits>

namespace quantd::core::quant {
namespace {

constexpr int kTileCols = 32;   // columns per tile on the row-major fast path
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

// The search: RTN first, then clipped ranges and least-squares refits; the
// lowest squared error wins (ties keep the earlier candidate, RTN first).
template <typename T, Int4Layout L>
BlockQ SearchParams(const float* v, int rows, float mn, float mx, const Int4Options& o, T* scale) {
  const int qmin = QMin(o), qmax = QMax(o);
  BlockQ best = RtnParams(mn, mx, o, scale);
  double best_err = BlockError<L>(v, rows, best, qmin, qmax);
  if (best_err == 0.0) return best;
  auto consider = [&](T s, int zp) {
    BlockQ c = MakeBlockQ(s, zp);
    if (!std::isfinite(c.scale)) return;
    double e = BlockError<L>(v, rows, c, qmin, qmax);
    if (e < best_err) {
      best_err = e;
      best = c;
      *scale = s;
    }
  };
  using Tr = ElementTraits<T>;
  if (o.symmetric) {
    const int zp = L == Int4Layout::kMatMulNBits ? 8 : 0;
    const float m = std::fabs(mx) > std::fabs(mn) ? mx : mn;
    for (int i = 0; i <= 24; ++i) {
      const float f = 1.0f - 0.02f * static_cast<float>(i);
      consider(Tr::FromFloat(-m * f / 8.0f), zp);  // extreme -> code -8
      consider(Tr::FromFloat(m * f / 7.0f), zp);   // extreme -> code +7
    }
    for (int it = 0; it < 2; ++it) {
      float s = RefitScale<L>(v, rows, best, zp, qmin, qmax);
      if (s != 0.0f) consider(Tr::FromFloat(s), zp);
    }
  } else {
    const float lo = std::min(mn, 0.0f), hi = std::max(mx, 0.0f);
    for (int a = 0; a < 8; ++a) {
      for (int b = 0; b < 8; ++b) {
        T s;
        BlockQ c = RtnParams<T>(lo * (1.0f - 0.05f * a), hi * (1.0f - 0.05f * b), o, &s);
        consider(s, c.zp);
      }
    }
    for (int it = 0; it < 2; ++it) {
      // Fit v ~ s * code + c, then round the zero point and refit the scale.
      const float zpf = static_cast<float>(best.zp);
      double sq = 0, sv = 0, sqq = 0, sqv = 0;
      for (int i = 0; i < rows; ++i) {
        double c = Code<L>(v[i], best.recip, zpf, best.zp, qmin, qmax);
        sq += c;
        sv += v[i];
        sqq += c * c;
        sqv += c * v[i];
      }
      double var = sqq - sq * sq / rows;
      if (var <= 0) break;
      double s = (sqv - sq * sv / rows) / var;
      if (s == 0) break;
      double off = (sv - s * sq) / rows;
      int zp = static_cast<int>(std::lround(-off / s));
      zp = std::clamp(zp, 0, 15);
      BlockQ tmp = best;
      consider(Tr::FromFloat(static_cast<float>(s)), zp);
      float s2 = RefitScale<L>(v, rows, MakeBlockQ(Tr::FromFloat(static_cast<float>(s)), zp), zp,
                               qmin, qmax);
      if (s2 != 0.0f) consider(Tr::FromFloat(s2), zp);
      if (tmp.scale == best.scale && tmp.zp == best.zp) break;
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

// Fast RTN path for row-major weights (col_stride == 1): tiles of columns,
// each block scanned row by row so the inner loops run over contiguous
// columns and vectorize.
template <typename T, Int4Layout L>
void QuantizeRowMajorRtn(const WeightView<T>& w, const Int4Options& o, int64_t n_begin,
                         int64_t n_end, uint8_t* packed, T* scales, uint8_t* zero_points) {
  const int bs = o.block_size;
  const int64_t blocks = (w.k + bs - 1) / bs;
  const int qmin = QMin(o), qmax = QMax(o);
  alignas(64) float mn[kTileCols], mx[kTileCols], recip[kTileCols], zpf[kTileCols];
  alignas(64) float row_buf[kTileCols];
  int zpi[kTileCols];
  uint8_t prev_last[kTileCols];
  alignas(64) uint8_t codes[kMaxBlock * kTileCols];  // [row][col]
  for (int64_t c0 = n_begin; c0 < n_end; c0 += kTileCols) {
    const int tn = static_cast<int>(std::min<int64_t>(kTileCols, n_end - c0));
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * bs;
      const int rows = static_cast<int>(std::min<int64_t>(bs, w.k - r0));
      for (int j = 0; j < kTileCols; ++j) {
        mn[j] = FLT_MAX;
        mx[j] = -FLT_MAX;
      }
      for (int i = 0; i < rows; ++i) {
        const T* src = w.data + (r0 + i) * w.row_stride + c0;
        for (int j = 0; j < tn; ++j) {
          float v = ElementTraits<T>::ToFloat(src[j]);
          mn[j] = v < mn[j] ? v : mn[j];
          mx[j] = v > mx[j] ? v : mx[j];
        }
      }
      for (int j = 0; j < tn; ++j) {
        T scale;
        BlockQ q = RtnParams(mn[j], mx[j], o, &scale);
        StoreParams(o, w.n, blocks, c0 + j, b, scale, q.zp, scales, zero_points);
        recip[j] = q.recip;
        zpf[j] = static_cast<float>(q.zp);
        zpi[j] = q.zp;
      }
      for (int i = 0; i < rows; ++i) {
        const T* src = w.data + (r0 + i) * w.row_stride + c0;
        uint8_t* out = codes + i * kTileCols;
        if constexpr (std::is_same_v<T, float>) {
          for (int j = 0; j < tn; ++j) {
            out[j] = static_cast<uint8_t>(Code<L>(src[j], recip[j], zpf[j], zpi[j], qmin, qmax));
          }
        } else {
          for (int j = 0; j < tn; ++j) row_buf[j] = ElementTraits<T>::ToFloat(src[j]);
          for (int j = 0; j < tn; ++j) {
            out[j] = static_cast<uint8_t>(Code<L>(row_buf[j], recip[j], zpf[j], zpi[j], qmin, qmax));
          }
        }
      }
      if constexpr (L == Int4Layout::kMatMulNBits) {
        for (int j = 0; j < tn; ++j) {
          int carry = rows >= 2 ? codes[(rows - 2) * kTileCols + j] : ((b & 1) ? prev_last[j] : 0);
          PackNBitsBlock(codes + j, kTileCols, rows, carry,
                         packed + ((c0 + j) * blocks + b) * (bs / 2));
          prev_last[j] = codes[(rows - 1) * kTileCols + j];
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
