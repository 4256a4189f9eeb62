#include "quantd/core/base/transpose.h"

#include <cstring>

#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/half.h"
#include "simd_convert.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace quantd::core {
namespace {

// Blocks of 16 x 16 keep the lines of both sides in L1. `widen` maps one
// source element (read with memcpy: any alignment) to its float, `put`
// stores a float into a destination element.
template <typename T, typename D, typename Widen, typename Put>
void TransposeRef(const void* src_bytes, int64_t rows, int64_t cols, int64_t src_ld, D* dst,
                  int64_t dst_ld, Widen widen, Put&& put) {
  const auto* src = static_cast<const unsigned char*>(src_bytes);
  constexpr int64_t kBlock = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    for (int64_t c0 = 0; c0 < cols; c0 += kBlock) {
      const int64_t r1 = r0 + kBlock < rows ? r0 + kBlock : rows;
      const int64_t c1 = c0 + kBlock < cols ? c0 + kBlock : cols;
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) {
          T x;
          std::memcpy(&x, src + (r * src_ld + c) * static_cast<int64_t>(sizeof(T)), sizeof(T));
          put(dst + c * dst_ld + r, widen(x));
        }
      }
    }
  }
}

float Same(float x) { return x; }
void PutFloat(float* at, float v) { *at = v; }

// FloatToHalfSpan's rule, one value at a time, counting into *stats.
struct PutHalf {
  NarrowingStats* stats;
  void operator()(uint16_t* at, float v) const { FloatToHalfSpan_ref(&v, at, 1, stats); }
};

}  // namespace

void TransposeFloats_ref(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                         int64_t dst_ld) {
  TransposeRef<float>(src, rows, cols, src_ld, dst, dst_ld, Same, PutFloat);
}

void TransposeBfloat16ToFloats_ref(const void* src, int64_t rows, int64_t cols, int64_t src_ld,
                                   float* dst, int64_t dst_ld) {
  TransposeRef<uint16_t>(src, rows, cols, src_ld, dst, dst_ld, Bfloat16ToFloat, PutFloat);
}

void TransposeHalfToFloats_ref(const void* src, int64_t rows, int64_t cols, int64_t src_ld,
                               float* dst, int64_t dst_ld) {
  TransposeRef<uint16_t>(src, rows, cols, src_ld, dst, dst_ld, HalfToFloat, PutFloat);
}

#if defined(__x86_64__)
namespace {

struct StoreFloat {
  __attribute__((target("avx2"))) void operator()(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
};

struct StoreHalf {
  simd::HalfNarrower narrow;
  __attribute__((target("avx2,f16c"))) void operator()(uint16_t* p, __m256 v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), narrow(v));
  }
};

// Eight rows of eight elements in, eight columns out (unpack, shuffle,
// 128-bit permute); the ragged edges go through TransposeRef. Columns
// outer: the eight destination rows of a column block fill contiguously
// while the source block is read from cache (callers keep `rows` to a few
// hundred, so a column block's source lines stay in L1 and its pages in
// the TLB). Element (r, c) lies at byte (r * src_ld + c) * sizeof(T): the
// loads (simd_convert.h) need no alignment.
template <typename T, typename D, typename Load, typename Store, typename Widen, typename Put>
__attribute__((target("avx2,f16c"))) void TransposeAvx2(const void* src_bytes, int64_t rows,
                                                        int64_t cols, int64_t src_ld, D* dst,
                                                        int64_t dst_ld, Load load, Store& store,
                                                        Widen widen, Put&& put) {
  const auto* src = static_cast<const unsigned char*>(src_bytes);
  constexpr int64_t kSize = sizeof(T);
  const int64_t rows8 = rows & ~int64_t{7}, cols8 = cols & ~int64_t{7};
  for (int64_t c = 0; c < cols8; c += 8) {
    for (int64_t r = 0; r < rows8; r += 8) {
      __m256 a[8], t[8], u[8];
      for (int q = 0; q < 8; ++q) a[q] = load(src + ((r + q) * src_ld + c) * kSize);
      for (int q = 0; q < 8; q += 2) {
        t[q] = _mm256_unpacklo_ps(a[q], a[q + 1]);
        t[q + 1] = _mm256_unpackhi_ps(a[q], a[q + 1]);
      }
      for (int q = 0; q < 8; q += 4) {
        u[q] = _mm256_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[q + 1] = _mm256_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      D* o = dst + c * dst_ld + r;
      for (int q = 0; q < 4; ++q) {
        store(o + q * dst_ld, _mm256_permute2f128_ps(u[q], u[q + 4], 0x20));
        store(o + (q + 4) * dst_ld, _mm256_permute2f128_ps(u[q], u[q + 4], 0x31));
      }
    }
  }
  if (cols8 < cols) {  // the last columns of the full row blocks
    TransposeRef<T>(src + cols8 * kSize, rows8, cols - cols8, src_ld, dst + cols8 * dst_ld, dst_ld,
                    widen, put);
  }
  if (rows8 < rows) {  // the last rows, every column
    TransposeRef<T>(src + rows8 * src_ld * kSize, rows - rows8, cols, src_ld, dst + rows8, dst_ld,
                    widen, put);
  }
}

template <typename T, typename Load, typename Widen>
void ToFloatsAvx2(const void* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                  int64_t dst_ld, Load load, Widen widen) {
  StoreFloat store;
  TransposeAvx2<T>(src, rows, cols, src_ld, dst, dst_ld, load, store, widen, PutFloat);
}

template <typename T, typename Load, typename Widen>
void ToHalvesAvx2(const void* src, int64_t rows, int64_t cols, int64_t src_ld, uint16_t* dst,
                  int64_t dst_ld, Load load, Widen widen, NarrowingStats* stats) {
  StoreHalf store;
  TransposeAvx2<T>(src, rows, cols, src_ld, dst, dst_ld, load, store, widen, PutHalf{stats});
  store.narrow.AddTo(stats);
}

}  // namespace
#endif

void TransposeFloats(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                     int64_t dst_ld) {
#if defined(__x86_64__)
  if (ActiveCpuLevel() >= CpuLevel::kAvx2) {
    return ToFloatsAvx2<float>(src, rows, cols, src_ld, dst, dst_ld, simd::LoadFloat(), Same);
  }
#endif
  TransposeFloats_ref(src, rows, cols, src_ld, dst, dst_ld);
}

void TransposeBfloat16ToFloats(const void* src, int64_t rows, int64_t cols, int64_t src_ld,
                               float* dst, int64_t dst_ld) {
#if defined(__x86_64__)
  if (ActiveCpuLevel() >= CpuLevel::kAvx2) {
    return ToFloatsAvx2<uint16_t>(src, rows, cols, src_ld, dst, dst_ld, simd::LoadBfloat16(),
                                  Bfloat16ToFloat);
  }
#endif
  TransposeBfloat16ToFloats_ref(src, rows, cols, src_ld, dst, dst_ld);
}

void TransposeHalfToFloats(const void* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                           int64_t dst_ld) {
#if defined(__x86_64__)
  if (simd::F16cActive()) {
    return ToFloatsAvx2<uint16_t>(src, rows, cols, src_ld, dst, dst_ld, simd::LoadHalf(),
                                  HalfToFloat);
  }
#endif
  TransposeHalfToFloats_ref(src, rows, cols, src_ld, dst, dst_ld);
}

void TransposeFloatsToHalves(const float* src, int64_t rows, int64_t cols, int64_t src_ld,
                             uint16_t* dst, int64_t dst_ld, NarrowingStats* stats) {
#if defined(__x86_64__)
  if (simd::F16cActive()) {  // the halves are stored with F16C
    return ToHalvesAvx2<float>(src, rows, cols, src_ld, dst, dst_ld, simd::LoadFloat(), Same,
                               stats);
  }
#endif
  TransposeRef<float>(src, rows, cols, src_ld, dst, dst_ld, Same, PutHalf{stats});
}

void TransposeBfloat16ToHalves(const void* src, int64_t rows, int64_t cols, int64_t src_ld,
                               uint16_t* dst, int64_t dst_ld, NarrowingStats* stats) {
#if defined(__x86_64__)
  if (simd::F16cActive()) {  // the halves are stored with F16C
    return ToHalvesAvx2<uint16_t>(src, rows, cols, src_ld, dst, dst_ld, simd::LoadBfloat16(),
                                  Bfloat16ToFloat, stats);
  }
#endif
  TransposeRef<uint16_t>(src, rows, cols, src_ld, dst, dst_ld, Bfloat16ToFloat, PutHalf{stats});
}

void TransposeHalfToHalves(const void* src, int64_t rows, int64_t cols, int64_t src_ld,
                           uint16_t* dst, int64_t dst_ld, NarrowingStats* stats) {
#if defined(__x86_64__)
  if (simd::F16cActive()) {  // the halves are stored with F16C
    return ToHalvesAvx2<uint16_t>(src, rows, cols, src_ld, dst, dst_ld, simd::LoadHalf(),
                                  HalfToFloat, stats);
  }
#endif
  TransposeRef<uint16_t>(src, rows, cols, src_ld, dst, dst_ld, HalfToFloat, PutHalf{stats});
}

}  // namespace quantd::core
