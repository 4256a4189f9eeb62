// Scalar reference of QuantizeInt4: a plain transliteration of the published
// MLAS algorithm (onnxruntime/core/mlas/lib/q4_dq.cpp), one column and one
// block at a time, std::roundf, no tiling, no SIMD, packing spelled out
// nibble by nibble. The fast kernels are tested against it byte for byte.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "int4_kernels.h"
#include "int4_search.h"
#include "quantd/core/quant/int4_blockwise.h"

namespace quantd::core::quant {
namespace {

// ORs a 4-bit code into nibble `index` of `base` (low nibble first).
inline void OrNibble(uint8_t* base, int64_t index, int code) {
  base[index / 2] =
      static_cast<uint8_t>(base[index / 2] | ((code & Uint4Bits::kMask) << ((index & 1) * 4)));
}

template <typename T, Int4Layout L>
void QuantizeRef(const WeightView<T>& w, const Int4Options& o, int64_t n_begin, int64_t n_end,
                 uint8_t* packed, ScaleOf<T>* scales, uint8_t* zero_points) {
  using Tr = ElementTraits<ScaleOf<T>>;  // the scales' rounding
  constexpr bool kNBits = L == Int4Layout::kMatMulNBits;
  const int bs = o.block_size;
  const int64_t K = w.k, N = w.n;
  const int64_t blocks = (K + bs - 1) / bs;
  const int qmin = int4::QMin(o), qmax = int4::QMax(o);
  float v[int4::kMaxBlock];
  for (int64_t n = n_begin; n < n_end; ++n) {
    int code_k_minus_2 = 0;  // code of row K-2 (the odd-K carry)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k0 = b * bs;
      const int rows = static_cast<int>(std::min<int64_t>(K, k0 + bs) - k0);
      float mn = FLT_MAX, mx = -FLT_MAX;
      for (int i = 0; i < rows; ++i) {
        v[i] = ElementTraits<T>::ToFloat(w.data[(k0 + i) * w.row_stride + n * w.col_stride]);
        mn = std::min(mn, v[i]);
        mx = std::max(mx, v[i]);
      }
      ScaleOf<T> scale;
      int zp;
      if (o.algorithm == Int4Algorithm::kSearch) {
        zp = int4::SearchParams<ScaleOf<T>, L>(v, rows, mn, mx, o, int4::BlockErrorScalar, &scale)
                 .zp;
      } else if (o.symmetric) {
        // The extreme of larger magnitude (a tie picks the minimum) maps to -8.
        const float m = std::fabs(mx) > std::fabs(mn) ? mx : mn;
        scale = Tr::FromFloat(m / static_cast<float>(Int4Bits::kMin));
        zp = int4::SymmetricZeroPoint(L);
      } else {
        // The range widened to include 0, over 15 steps.
        mn = std::min(mn, 0.0f);
        mx = std::max(mx, 0.0f);
        const float sf = (mx - mn) / static_cast<float>(Uint4Bits::kMax);
        zp = sf != 0.0f ? static_cast<int>(std::clamp(std::roundf(-mn / sf), 0.0f,
                                                      static_cast<float>(Uint4Bits::kMax)))
                        : 0;
        scale = Tr::FromFloat(sf);
      }
      const float s = Tr::ToFloat(scale);
      const float rcp = s != 0.0f ? 1.0f / s : 0.0f;
      if (kNBits) {
        scales[n * blocks + b] = scale;
      } else if (o.n_major) {
        scales[n * blocks + b] = scale;
      } else {
        scales[b * N + n] = scale;
      }
      for (int i = 0; i < rows; ++i) {
        int code;
        if (kNBits) {  // clamp(roundf(w * r + zp), 0, 15)
          code = static_cast<int>(std::clamp(std::roundf(v[i] * rcp + static_cast<float>(zp)),
                                             static_cast<float>(qmin), static_cast<float>(qmax)));
          OrNibble(packed + (n * blocks + b) * (bs / 2), i, code);
        } else {  // clamp(int(roundf(w * r)) + zp, qmin, qmax)
          code = static_cast<int>(std::clamp(std::roundf(v[i] * rcp), static_cast<float>(qmin - zp),
                                             static_cast<float>(qmax - zp))) +
                 zp;
          OrNibble(packed, o.n_major ? n * K + k0 + i : (k0 + i) * N + n, code);
        }
        if (k0 + i == K - 2) code_k_minus_2 = code;
      }
      if (!o.symmetric) {
        if (kNBits) {
          OrNibble(zero_points + n * ((blocks + 1) / 2), b, zp);
        } else {
          OrNibble(zero_points, o.n_major ? n * blocks + b : b * N + n, zp);
        }
      }
    }
    if (kNBits && !o.symmetric && (blocks & 1)) {
      // MLAS fills the unused last zero-point nibble with 8.
      OrNibble(zero_points + n * ((blocks + 1) / 2), blocks, Uint4Bits::kSymmetricZeroPoint);
    }
    if (kNBits && (K & 1)) {
      // MLAS leaves the previous row's code in the unused high nibble of an
      // odd tail when its thread block (2 quantization blocks) holds row K-2.
      const int64_t thread_block_start = ((K - 1) / (2 * bs)) * 2 * bs;
      const int carry = K - 1 > thread_block_start ? code_k_minus_2 : 0;
      const int64_t b = (K - 1) / bs;
      OrNibble(packed + (n * blocks + b) * (bs / 2), (K - 1) % bs + 1, carry);
    }
  }
}

}  // namespace

template <typename T>
void QuantizeInt4_ref(const WeightView<T>& w, const Int4Options& o, int64_t n_begin, int64_t n_end,
                      uint8_t* packed, ScaleOf<T>* scales, uint8_t* zero_points) {
  if (o.layout == Int4Layout::kMatMulNBits) {
    QuantizeRef<T, Int4Layout::kMatMulNBits>(w, o, n_begin, n_end, packed, scales, zero_points);
  } else {
    QuantizeRef<T, Int4Layout::kQdq>(w, o, n_begin, n_end, packed, scales, zero_points);
  }
}

template void QuantizeInt4_ref<float>(const WeightView<float>&, const Int4Options&, int64_t,
                                      int64_t, uint8_t*, float*, uint8_t*);
template void QuantizeInt4_ref<Half>(const WeightView<Half>&, const Int4Options&, int64_t, int64_t,
                                     uint8_t*, Half*, uint8_t*);
template void QuantizeInt4_ref<Bfloat16>(const WeightView<Bfloat16>&, const Int4Options&, int64_t,
                                         int64_t, uint8_t*, float*, uint8_t*);

}  // namespace quantd::core::quant
