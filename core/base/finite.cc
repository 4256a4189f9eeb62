#include "quantd/core/base/finite.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace quantd::core {
namespace {

constexpr int64_t kChunk = 1024;

// Bits of element i of a `Bits`-wide little-endian array at `data`.
template <typename Bits>
inline Bits Load(const void* data, int64_t i) {
  Bits b;
  std::memcpy(&b, static_cast<const unsigned char*>(data) + i * sizeof(Bits), sizeof(Bits));
  return b;
}

// First index whose exponent field (mask) is all ones, or -1.
template <typename Bits, Bits kExponent>
int64_t FirstAllOnesExponent(const void* data, int64_t n) {
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t c1 = n - c0 < kChunk ? n : c0 + kChunk;
    unsigned hit = 0;
    for (int64_t i = c0; i < c1; ++i) {
      hit |= (Load<Bits>(data, i) & kExponent) == kExponent ? 1u : 0u;
    }
    if (hit == 0) continue;
    for (int64_t i = c0; i < c1; ++i) {
      if ((Load<Bits>(data, i) & kExponent) == kExponent) return i;
    }
  }
  return -1;
}

}  // namespace

int64_t FirstNonFiniteF32(const void* data, int64_t n) {
  return FirstAllOnesExponent<uint32_t, 0x7f800000u>(data, n);
}

int64_t FirstNonFiniteF16(const void* data, int64_t n) {
  return FirstAllOnesExponent<uint16_t, 0x7c00u>(data, n);
}

int64_t FirstNonFiniteBF16(const void* data, int64_t n) {
  return FirstAllOnesExponent<uint16_t, 0x7f80u>(data, n);
}

bool AllFiniteF32Rows(const float* data, int64_t ld, int rows, int width) {
  unsigned hit = 0;
  for (int i = 0; i < rows; ++i) {
    const float* row = data + i * ld;
    for (int j = 0; j < width; ++j) {
      uint32_t b;
      std::memcpy(&b, row + j, sizeof(b));
      hit |= (b & 0x7f800000u) == 0x7f800000u ? 1u : 0u;
    }
  }
  return hit == 0;
}

absl::Status NonFiniteWeightError(absl::string_view tensor, int64_t index, float value) {
  const char* what = std::isnan(value) ? "NaN" : (value > 0 ? "Inf" : "-Inf");
  return absl::InvalidArgumentError(
      absl::StrCat(tensor.empty() ? "" : absl::StrCat("tensor '", tensor.substr(0, 256), "' "),
                   "element ", index, " is ", what,
                   "; weights must be finite to be quantized (fix or re-export the model)"));
}

}  // namespace quantd::core
