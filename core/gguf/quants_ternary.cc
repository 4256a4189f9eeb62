// Ternary types TQ1_0 and TQ2_0 (values -1, 0, +1 times a per-block fp16
// scale, the block's max |x|): scalar references, bit-exact with
// llama.cpp's quantize_row_tq1_0_ref / quantize_row_tq2_0_ref (b4747).
// Rounding is lroundf (half away from zero). Importance weights do not
// apply (llama.cpp ignores them for these types). Pure; thread-safe.
#include <algorithm>
#include <cmath>

#include "quantd/core/base/half.h"
#include "quants_internal.h"

namespace quantd::core::gguf {
namespace {

// The block's scale (max |x|) stored as fp16; returns 1/scale (0 for 0).
template <class Block>
float TernaryScale(const float* x, Block* y) {
  float amax = 0.0f;
  for (int j = 0; j < kQKK; ++j) amax = std::max(amax, std::fabs(x[j]));
  y->d = FloatToHalf(amax);
  return amax != 0.0f ? 1.0f / amax : 0.0f;
}

// -1, 0, 1 -> 0, 1, 2.
inline int Trit(float v, float id) { return static_cast<int>(std::lround(v * id)) + 1; }

// Packs base-3 digits (most significant first) into a byte as the
// fixed-point fraction ceil(q * 256 / 243).
inline uint8_t PackTrits(int q) { return static_cast<uint8_t>((q * 256 + (243 - 1)) / 243); }

}  // namespace

void QuantizeTQ1_0_ref(const float* x, BlockTQ1_0* y, int64_t n) {
  constexpr int kQs = sizeof(y->qs);
  constexpr int kQs32 = kQs - kQs % 32;
  constexpr int kQh = sizeof(y->qh);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float id = TernaryScale(x, &y[i]);
    for (int j = 0; j < kQs32; j += 32) {  // 5 values per byte, 32 bytes
      for (int m = 0; m < 32; ++m) {
        uint8_t q = 0;
        for (int k = 0; k < 5; ++k) q = static_cast<uint8_t>(q * 3 + Trit(x[m + k * 32], id));
        y[i].qs[j + m] = PackTrits(q);
      }
      x += 5 * 32;
    }
    for (int j = kQs32; j < kQs; j += 16) {  // 5 values per byte, 16 bytes
      for (int m = 0; m < 16; ++m) {
        uint8_t q = 0;
        for (int k = 0; k < 5; ++k) q = static_cast<uint8_t>(q * 3 + Trit(x[m + k * 16], id));
        y[i].qs[j + m] = PackTrits(q);
      }
      x += 5 * 16;
    }
    for (int j = 0; j < kQh; ++j) {  // 4 values per byte
      uint8_t q = 0;
      for (int m = 0; m < 4; ++m) q = static_cast<uint8_t>(q * 3 + Trit(x[j + m * kQh], id));
      q = static_cast<uint8_t>(q * 3);  // the first value in the most significant trit
      y[i].qh[j] = PackTrits(q);
    }
    x += 4 * kQh;
  }
}

void QuantizeTQ2_0_ref(const float* x, BlockTQ2_0* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float id = TernaryScale(x, &y[i]);
    for (int j = 0; j < static_cast<int>(sizeof(y->qs)); j += 32) {
      for (int m = 0; m < 32; ++m) {
        uint8_t q = 0;
        for (int k = 0; k < 4; ++k)
          q = static_cast<uint8_t>(q + ((Trit(x[m + k * 32], id) & 3) << (2 * k)));
        y[i].qs[j + m] = q;
      }
      x += 4 * 32;
    }
  }
}

}  // namespace quantd::core::gguf
