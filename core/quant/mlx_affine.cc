#include "quantd/core/quant/mlx_affine.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "mlx_affine_avx2.h"
#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/half.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define QUANTD_MLX_X86 1
// GCC 12 warns inside its own AVX-512 headers (the undefined source of the
// reductions); nothing here reads an uninitialized value.
#if !defined(__clang__)  // a GCC-only warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

namespace quantd::core::quant {
namespace {

// MLX's float -> bfloat16 (its software bfloat16 type): round to nearest
// even, every NaN becomes 0x7FC0.
inline uint16_t MlxFloatToBfloat16(float f) {
  if (std::isnan(f)) return 0x7FC0;
  uint32_t x = std::bit_cast<uint32_t>(f);
  x += ((x >> 16) & 1u) + 0x7FFFu;
  return static_cast<uint16_t>(x >> 16);
}

inline float LoadElement(MlxFloatType type, const void* base, int64_t i) {
  switch (type) {
    case MlxFloatType::kF32:
      return static_cast<const float*>(base)[i];
    case MlxFloatType::kF16:
      return HalfToFloat(static_cast<const uint16_t*>(base)[i]);
    case MlxFloatType::kBF16:
      return Bfloat16ToFloat(static_cast<const uint16_t*>(base)[i]);
  }
  return 0.0f;
}

inline void StoreElement(MlxFloatType type, void* base, int64_t i, float v) {
  switch (type) {
    case MlxFloatType::kF32:
      static_cast<float*>(base)[i] = v;
      return;
    case MlxFloatType::kF16:
      static_cast<uint16_t*>(base)[i] = FloatToHalf(v);
      return;
    case MlxFloatType::kBF16:
      static_cast<uint16_t*>(base)[i] = MlxFloatToBfloat16(v);
      return;
  }
}

struct GroupParams {
  float scale;
  float bias;
};

// The group's scale and bias from its true min and max (float32 math, the
// order of operations of MLX's CPU kernel).
inline GroupParams ParamsFromRange(float w_min, float w_max, float n_bins) {
  const bool mask = std::fabs(w_min) > std::fabs(w_max);
  float scale = std::max((w_max - w_min) / n_bins, kMlxAffineMinScale);
  scale = mask ? scale : -scale;
  const float edge = mask ? w_min : w_max;
  const float q0 = std::rint(edge / scale);
  GroupParams p{scale, 0.0f};
  if (q0 != 0.0f) {
    p.scale = edge / q0;
    p.bias = edge;
  }
  return p;
}

// Packs a group's codes as an LSB-first stream.
template <int Bits, int GroupSize>
inline void PackCodes(const uint32_t* codes, uint8_t* out) {
  using Tr = MlxAffineBitsTraits<Bits>;
  static_assert(GroupSize % Tr::kCodesPerPack == 0, "a group is whole packs");
  for (int p = 0; p < GroupSize / Tr::kCodesPerPack; ++p) {
    uint64_t acc = 0;
    for (int k = 0; k < Tr::kCodesPerPack; ++k) {
      acc |= static_cast<uint64_t>(codes[p * Tr::kCodesPerPack + k]) << (k * Bits);
    }
    for (int b = 0; b < Tr::kBytesPerPack; ++b) {
      out[p * Tr::kBytesPerPack + b] = static_cast<uint8_t>(acc >> (8 * b));
    }
  }
}

// --- Scalar reference -------------------------------------------------------

template <int Bits, int GroupSize>
void QuantizeRef(MlxFloatType type, const void* w, int64_t rows, int64_t cols, int64_t ld,
                 uint8_t* packed, void* scales, void* biases) {
  using Tr = MlxAffineBitsTraits<Bits>;
  const float n_bins = static_cast<float>(Tr::kMaxCode);
  const int64_t groups = cols / GroupSize;
  const int64_t row_bytes = MlxAffinePackedBytesPerRow(cols, Bits);
  float v[GroupSize];
  uint32_t codes[GroupSize];
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t first = r * ld + g * GroupSize;
      float w_min = std::numeric_limits<float>::infinity();
      float w_max = -w_min;
      for (int j = 0; j < GroupSize; ++j) {
        v[j] = LoadElement(type, w, first + j);
        w_max = std::max(w_max, v[j]);
        w_min = std::min(w_min, v[j]);
      }
      const GroupParams p = ParamsFromRange(w_min, w_max, n_bins);
      for (int j = 0; j < GroupSize; ++j) {
        float q = std::rint((v[j] - p.bias) / p.scale);
        q = std::min(std::max(q, 0.0f), n_bins);
        codes[j] = q == q ? static_cast<uint32_t>(q) : 0u;
      }
      PackCodes<Bits, GroupSize>(codes, packed + r * row_bytes + g * GroupSize * Bits / 8);
      StoreElement(type, scales, r * groups + g, p.scale);
      StoreElement(type, biases, r * groups + g, p.bias);
    }
  }
}

// --- AVX2 -------------------------------------------------------------------
// The same float operations eight lanes at a time. Lane-wise max/min keep the
// running value when the new one is NaN (as std::max(running, x) does); the
// final lane reduction can only differ from the sequential scan in the sign of
// a zero, which changes neither the scale, the bias nor any code.

#ifdef QUANTD_MLX_X86
__attribute__((target("avx2,f16c"))) inline __m256 Load8(MlxFloatType type, const void* base,
                                                         int64_t i) {
  switch (type) {
    case MlxFloatType::kF32:
      return _mm256_loadu_ps(static_cast<const float*>(base) + i);
    case MlxFloatType::kF16:
      return _mm256_cvtph_ps(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
    case MlxFloatType::kBF16: {
      __m128i h =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
  }
  return _mm256_setzero_ps();
}

template <int Bits, int GroupSize>
__attribute__((target("avx2,f16c"))) void QuantizeAvx2(MlxFloatType type, const void* w,
                                                       int64_t rows, int64_t cols, int64_t ld,
                                                       uint8_t* packed, void* scales,
                                                       void* biases) {
  using Tr = MlxAffineBitsTraits<Bits>;
  const float n_bins = static_cast<float>(Tr::kMaxCode);
  const int64_t groups = cols / GroupSize;
  const int64_t row_bytes = MlxAffinePackedBytesPerRow(cols, Bits);
  alignas(32) float v[GroupSize];
  alignas(32) uint32_t codes[GroupSize];
  alignas(32) float lanes_max[8], lanes_min[8];
  const __m256 zero = _mm256_setzero_ps();
  const __m256 bins = _mm256_set1_ps(n_bins);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t first = r * ld + g * GroupSize;
      __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
      __m256 vmin = _mm256_set1_ps(std::numeric_limits<float>::infinity());
      for (int j = 0; j < GroupSize; j += 8) {
        __m256 x = Load8(type, w, first + j);
        _mm256_store_ps(v + j, x);
        vmax = _mm256_max_ps(x, vmax);  // x > vmax ? x : vmax (NaN x keeps vmax)
        vmin = _mm256_min_ps(x, vmin);
      }
      _mm256_store_ps(lanes_max, vmax);
      _mm256_store_ps(lanes_min, vmin);
      float w_max = lanes_max[0], w_min = lanes_min[0];
      for (int l = 1; l < 8; ++l) {
        w_max = std::max(w_max, lanes_max[l]);
        w_min = std::min(w_min, lanes_min[l]);
      }
      const GroupParams p = ParamsFromRange(w_min, w_max, n_bins);
      const __m256 vbias = _mm256_set1_ps(p.bias);
      const __m256 vscale = _mm256_set1_ps(p.scale);
      for (int j = 0; j < GroupSize; j += 8) {
        __m256 q = _mm256_div_ps(_mm256_sub_ps(_mm256_load_ps(v + j), vbias), vscale);
        q = _mm256_round_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm256_max_ps(q, zero);  // NaN -> 0
        q = _mm256_min_ps(q, bins);
        const __m256i c = _mm256_cvttps_epi32(q);
        std::memcpy(codes + j, &c, sizeof(c));
      }
      PackCodes<Bits, GroupSize>(codes, packed + r * row_bytes + g * GroupSize * Bits / 8);
      StoreElement(type, scales, r * groups + g, p.scale);
      StoreElement(type, biases, r * groups + g, p.bias);
    }
  }
}

// --- AVX-512 (4 and 8 bits) ---------------------------------------------------
// A row is taken 16 groups at a time: their values are loaded (widened) into
// v with each group's min and max (lane-wise as above, then reduced), the 16
// groups' scales and biases come from ParamsFromRange's operations in one
// register each, and the codes divide by multiplying with the reciprocal:
// t = (v - bias) * (1 / scale) is within 3 * 2^-24 * |q| of q = (v - bias) /
// scale, both correctly rounded, so rint(t) = rint(q) whenever t is more than
// 2^-10 from a half-integer (|q| <= 2^9; beyond, both clamp alike). A vector
// with a lane that close (or a group whose reciprocal is not finite) is
// divided exactly. Same bytes as the reference (tests: every pattern, and
// values one ulp either side of each half-integer).

#define QUANTD_MLX_AVX512 \
  __attribute__((target("avx2,f16c,fma,avx512f,avx512bw,avx512dq,avx512vl")))

QUANTD_MLX_AVX512 inline __m512 Load16(MlxFloatType type, const void* base, int64_t i) {
  switch (type) {
    case MlxFloatType::kF32:
      return _mm512_loadu_ps(static_cast<const float*>(base) + i);
    case MlxFloatType::kF16:
      return _mm512_cvtph_ps(_mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + i)));
    case MlxFloatType::kBF16: {
      const __m256i h = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + i));
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
  }
  return _mm512_setzero_ps();
}

template <int Bits, int GroupSize>
QUANTD_MLX_AVX512 void QuantizeAvx512(MlxFloatType type, const void* w, int64_t rows, int64_t cols,
                                      int64_t ld, uint8_t* packed, void* scales, void* biases) {
  static_assert(Bits == 4 || Bits == 8, "whole nibbles or bytes per code");
  using Tr = MlxAffineBitsTraits<Bits>;
  constexpr int kLanes = 16;
  const float n_bins = static_cast<float>(Tr::kMaxCode);
  const int64_t groups = cols / GroupSize;
  const int64_t row_bytes = MlxAffinePackedBytesPerRow(cols, Bits);
  alignas(64) float v[kLanes * GroupSize];
  alignas(64) float gmin[kLanes], gmax[kLanes], gscale[kLanes], gbias[kLanes], grecip[kLanes];
  const __m512 sign = _mm512_set1_ps(-0.0f);
  const __m512 bins = _mm512_set1_ps(n_bins);
  const __m512 min_scale = _mm512_set1_ps(kMlxAffineMinScale);
  const __m512 near_half = _mm512_set1_ps(0.5f - 1.0f / 1024.0f);
  constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g0 = 0; g0 < groups; g0 += kLanes) {
      const int ng = static_cast<int>(std::min<int64_t>(kLanes, groups - g0));
      for (int gi = 0; gi < ng; ++gi) {
        const int64_t first = r * ld + (g0 + gi) * GroupSize;
        __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
        __m512 vmin = _mm512_set1_ps(std::numeric_limits<float>::infinity());
        for (int j = 0; j < GroupSize; j += kLanes) {
          const __m512 x = Load16(type, w, first + j);
          _mm512_store_ps(v + gi * GroupSize + j, x);
          vmax = _mm512_max_ps(x, vmax);  // x > vmax ? x : vmax (NaN x keeps vmax)
          vmin = _mm512_min_ps(x, vmin);
        }
        gmax[gi] = _mm512_reduce_max_ps(vmax);
        gmin[gi] = _mm512_reduce_min_ps(vmin);
      }
      // ParamsFromRange, 16 groups at once (lanes past ng are ignored).
      const __mmask16 live = static_cast<__mmask16>((1u << ng) - 1);
      const __m512 lo = _mm512_maskz_load_ps(live, gmin), hi = _mm512_maskz_load_ps(live, gmax);
      const __mmask16 mask =
          _mm512_cmp_ps_mask(_mm512_andnot_ps(sign, lo), _mm512_andnot_ps(sign, hi), _CMP_GT_OQ);
      // std::max(x, min) = x < min ? min : x.
      __m512 scale = _mm512_max_ps(min_scale, _mm512_div_ps(_mm512_sub_ps(hi, lo), bins));
      scale = _mm512_mask_blend_ps(mask, _mm512_xor_ps(scale, sign), scale);
      const __m512 edge = _mm512_mask_blend_ps(mask, hi, lo);
      const __m512 q0 = _mm512_roundscale_ps(_mm512_div_ps(edge, scale), kRound);
      const __mmask16 nz = _mm512_cmp_ps_mask(q0, _mm512_setzero_ps(), _CMP_NEQ_UQ);  // q0 != 0
      scale = _mm512_mask_div_ps(scale, nz, edge, q0);
      _mm512_store_ps(gscale, scale);
      _mm512_store_ps(gbias, _mm512_maskz_mov_ps(nz, edge));
      _mm512_store_ps(grecip, _mm512_div_ps(_mm512_set1_ps(1.0f), scale));
      for (int gi = 0; gi < ng; ++gi) {
        const int64_t g = g0 + gi;
        StoreElement(type, scales, r * groups + g, gscale[gi]);
        StoreElement(type, biases, r * groups + g, gbias[gi]);
        const __m512 vscale = _mm512_set1_ps(gscale[gi]), vbias = _mm512_set1_ps(gbias[gi]);
        const __m512 vrecip = _mm512_set1_ps(grecip[gi]);
        const bool exact = !std::isfinite(grecip[gi]);
        uint8_t* out = packed + r * row_bytes + g * GroupSize * Bits / 8;
        for (int j = 0; j < GroupSize; j += kLanes) {
          const __m512 d = _mm512_sub_ps(_mm512_load_ps(v + gi * GroupSize + j), vbias);
          const __m512 t = _mm512_mul_ps(d, vrecip);
          __m512 q = _mm512_roundscale_ps(t, kRound);
          const __mmask16 near =
              _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(t, q)), near_half, _CMP_GT_OQ);
          if (near != 0 || exact) q = _mm512_roundscale_ps(_mm512_div_ps(d, vscale), kRound);
          q = _mm512_max_ps(q, _mm512_setzero_ps());  // NaN -> 0
          q = _mm512_min_ps(q, bins);
          const __m512i c = _mm512_cvttps_epi32(q);
          if constexpr (Bits == 4) {
            // Codes 2i and 2i + 1 share a 64-bit lane; its low byte after
            // c | c >> 28 is lo | hi << 4 (element 0 in the low nibble).
            const __m512i pairs = _mm512_or_si512(c, _mm512_srli_epi64(c, 28));
            _mm_storel_epi64(reinterpret_cast<__m128i*>(out + j / 2), _mm512_cvtepi64_epi8(pairs));
          } else {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), _mm512_cvtepi32_epi8(c));
          }
        }
      }
    }
  }
}
#endif  // QUANTD_MLX_X86

template <int Bits, int GroupSize>
void Dequantize(MlxFloatType type, const uint8_t* packed, const void* scales, const void* biases,
                int64_t rows, int64_t cols, float* out) {
  using Tr = MlxAffineBitsTraits<Bits>;
  const int64_t groups = cols / GroupSize;
  const int64_t packs = cols / Tr::kCodesPerPack;
  const int64_t row_bytes = MlxAffinePackedBytesPerRow(cols, Bits);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = packed + r * row_bytes;
    float* dst = out + r * cols;
    for (int64_t p = 0; p < packs; ++p) {
      uint64_t acc = 0;
      for (int b = 0; b < Tr::kBytesPerPack; ++b) {
        acc |= static_cast<uint64_t>(src[p * Tr::kBytesPerPack + b]) << (8 * b);
      }
      for (int k = 0; k < Tr::kCodesPerPack; ++k) {
        dst[p * Tr::kCodesPerPack + k] = static_cast<float>((acc >> (k * Bits)) & Tr::kMaxCode);
      }
    }
    for (int64_t g = 0; g < groups; ++g) {
      const float s = LoadElement(type, scales, r * groups + g);
      const float b = LoadElement(type, biases, r * groups + g);
      for (int j = 0; j < GroupSize; ++j) {
        float& x = dst[g * GroupSize + j];
        x = x * s + b;
      }
    }
  }
}

#ifdef QUANTD_MLX_X86
// Dequantize, eight codes at a time: the 8 * Bits bits of codes c..c+7 (whole
// bytes, c a multiple of 8) as one 64-bit value, shifted apart in 64-bit
// lanes, masked and gathered into eight 32-bit lanes; then the same float
// multiply and add as the scalar loop (no FMA: the same roundings).
template <int Bits, int GroupSize>
__attribute__((target("avx2,f16c"))) void DequantizeAvx2(MlxFloatType type, const uint8_t* packed,
                                                         const void* scales, const void* biases,
                                                         int64_t rows, int64_t cols, float* out) {
  using Tr = MlxAffineBitsTraits<Bits>;
  static_assert(GroupSize % 8 == 0, "a group is whole runs of eight codes");
  const int64_t groups = cols / GroupSize;
  const int64_t row_bytes = MlxAffinePackedBytesPerRow(cols, Bits);
  const __m256i shift_lo = _mm256_setr_epi64x(0, Bits, 2 * Bits, 3 * Bits);
  const __m256i shift_hi = _mm256_setr_epi64x(4 * Bits, 5 * Bits, 6 * Bits, 7 * Bits);
  const __m256i mask = _mm256_set1_epi64x(Tr::kMaxCode);
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = packed + r * row_bytes;
    float* dst = out + r * cols;
    for (int64_t g = 0; g < groups; ++g) {
      const __m256 s = _mm256_set1_ps(LoadElement(type, scales, r * groups + g));
      const __m256 b = _mm256_set1_ps(LoadElement(type, biases, r * groups + g));
      for (int64_t c = g * GroupSize; c < (g + 1) * GroupSize; c += 8) {
        uint64_t bits = 0;
        std::memcpy(&bits, src + c / 8 * Bits, Bits);  // little-endian, as the packer writes
        const __m256i v = _mm256_set1_epi64x(static_cast<int64_t>(bits));
        const __m256i lo = _mm256_and_si256(_mm256_srlv_epi64(v, shift_lo), mask);
        const __m256i hi = _mm256_and_si256(_mm256_srlv_epi64(v, shift_hi), mask);
        // [c0 c4 c1 c5 c2 c6 c3 c7] as dwords, then in order.
        const __m256i mixed = _mm256_or_si256(lo, _mm256_slli_epi64(hi, 32));
        const __m256i codes = _mm256_permutevar8x32_epi32(mixed, order);
        const __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(codes), s);
        _mm256_storeu_ps(dst + c, _mm256_add_ps(x, b));
      }
    }
  }
}
#endif  // QUANTD_MLX_X86

// Calls fn.template operator()<Bits>() for the runtime bit width.
// Calls fn.template operator()<Bits, GroupSize>() for the runtime geometry;
// unsupported values write nothing (REQUIRES violated).
template <int Bits, typename Fn>
void DispatchGroup(int group_size, Fn&& fn) {
  switch (group_size) {
    case 32:
      return fn.template operator()<Bits, 32>();
    case 64:
      return fn.template operator()<Bits, 64>();
    case 128:
      return fn.template operator()<Bits, 128>();
    default:
      return;
  }
}

template <typename Fn>
void Dispatch(int bits, int group_size, Fn&& fn) {
  switch (bits) {
    case 2:
      return DispatchGroup<2>(group_size, fn);
    case 3:
      return DispatchGroup<3>(group_size, fn);
    case 4:
      return DispatchGroup<4>(group_size, fn);
    case 5:
      return DispatchGroup<5>(group_size, fn);
    case 6:
      return DispatchGroup<6>(group_size, fn);
    case 8:
      return DispatchGroup<8>(group_size, fn);
    default:
      return;
  }
}

}  // namespace

void QuantizeMlxAffine_ref(MlxFloatType type, int bits, int group_size, const void* w, int64_t rows,
                           int64_t cols, int64_t ld, uint8_t* packed, void* scales, void* biases) {
  Dispatch(bits, group_size, [&]<int B, int G>() {
    QuantizeRef<B, G>(type, w, rows, cols, ld, packed, scales, biases);
  });
}

#ifdef QUANTD_MLX_X86
bool MlxAffineAvx2Available() {
  return ActiveCpuLevel() >= CpuLevel::kAvx2 && HostCpuFeatures().f16c;
}

void QuantizeMlxAffine_avx2(MlxFloatType type, int bits, int group_size, const void* w,
                            int64_t rows, int64_t cols, int64_t ld, uint8_t* packed, void* scales,
                            void* biases) {
  Dispatch(bits, group_size, [&]<int B, int G>() {
    QuantizeAvx2<B, G>(type, w, rows, cols, ld, packed, scales, biases);
  });
}
#else
bool MlxAffineAvx2Available() { return false; }

void QuantizeMlxAffine_avx2(MlxFloatType type, int bits, int group_size, const void* w,
                            int64_t rows, int64_t cols, int64_t ld, uint8_t* packed, void* scales,
                            void* biases) {
  QuantizeMlxAffine_ref(type, bits, group_size, w, rows, cols, ld, packed, scales, biases);
}
#endif

#ifdef QUANTD_MLX_X86
bool MlxAffineAvx512Available(int bits) {
  return (bits == 4 || bits == 8) && ActiveCpuLevel() >= CpuLevel::kAvx512;
}

void QuantizeMlxAffine_avx512(MlxFloatType type, int bits, int group_size, const void* w,
                              int64_t rows, int64_t cols, int64_t ld, uint8_t* packed, void* scales,
                              void* biases) {
  auto run = [&]<int B, int G>() {
    QuantizeAvx512<B, G>(type, w, rows, cols, ld, packed, scales, biases);
  };
  if (bits == 4) return DispatchGroup<4>(group_size, run);
  if (bits == 8) return DispatchGroup<8>(group_size, run);
}
#else
bool MlxAffineAvx512Available(int bits) { return false; }

void QuantizeMlxAffine_avx512(MlxFloatType type, int bits, int group_size, const void* w,
                              int64_t rows, int64_t cols, int64_t ld, uint8_t* packed, void* scales,
                              void* biases) {
  QuantizeMlxAffine_ref(type, bits, group_size, w, rows, cols, ld, packed, scales, biases);
}
#endif

void QuantizeMlxAffine(MlxFloatType type, int bits, int group_size, const void* w, int64_t rows,
                       int64_t cols, int64_t ld, uint8_t* packed, void* scales, void* biases) {
  if (MlxAffineAvx512Available(bits)) {
    QuantizeMlxAffine_avx512(type, bits, group_size, w, rows, cols, ld, packed, scales, biases);
  } else if (MlxAffineAvx2Available()) {
    QuantizeMlxAffine_avx2(type, bits, group_size, w, rows, cols, ld, packed, scales, biases);
  } else {
    QuantizeMlxAffine_ref(type, bits, group_size, w, rows, cols, ld, packed, scales, biases);
  }
}

void DequantizeMlxAffine_ref(MlxFloatType type, int bits, int group_size, const uint8_t* packed,
                             const void* scales, const void* biases, int64_t rows, int64_t cols,
                             float* out) {
  Dispatch(bits, group_size, [&]<int B, int G>() {
    Dequantize<B, G>(type, packed, scales, biases, rows, cols, out);
  });
}

void DequantizeMlxAffine(MlxFloatType type, int bits, int group_size, const uint8_t* packed,
                         const void* scales, const void* biases, int64_t rows, int64_t cols,
                         float* out) {
#ifdef QUANTD_MLX_X86
  if (MlxAffineAvx2Available()) {
    return Dispatch(bits, group_size, [&]<int B, int G>() {
      DequantizeAvx2<B, G>(type, packed, scales, biases, rows, cols, out);
    });
  }
#endif
  DequantizeMlxAffine_ref(type, bits, group_size, packed, scales, biases, rows, cols, out);
}

}  // namespace quantd::core::quant
