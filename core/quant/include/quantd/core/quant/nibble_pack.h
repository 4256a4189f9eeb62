// 4-bit codes packed two per byte, the ONNX INT4/UINT4 storage order: element
// i of a flat index space lives in byte i / 2, in the low nibble when i is
// even and the high nibble when it is odd. An odd count leaves the last high
// nibble 0.
//
// Pure functions on caller-owned buffers: no allocation, thread-safe.
#ifndef QUANTD_CORE_QUANT_NIBBLE_PACK_H_
#define QUANTD_CORE_QUANT_NIBBLE_PACK_H_

#include <cstdint>

namespace quantd::core::quant {

// Bytes that hold `count` packed 4-bit codes.
constexpr int64_t NibbleBytes(int64_t count) { return (count + 1) / 2; }

// Code `i` (0..15) of `packed`.
inline uint8_t GetNibble(const uint8_t* packed, int64_t i) {
  return (packed[i >> 1] >> ((i & 1) * 4)) & 0x0F;
}

// ORs code `code` (0..15) into slot `i` of `packed`; the slot must be 0.
inline void OrNibble(uint8_t* packed, int64_t i, uint8_t code) {
  packed[i >> 1] |= static_cast<uint8_t>((code & 0x0F) << ((i & 1) * 4));
}

// Transposes a row-major [rows, cols] matrix of packed codes to [cols, rows]
// packed the same way.
// REQUIRES: `in` holds NibbleBytes(rows * cols) bytes, `out` as many, and the
// two do not overlap. Every byte of `out` is written.
void TransposeNibbles(const uint8_t* in, int64_t rows, int64_t cols, uint8_t* out);

}  // namespace quantd::core::quant

#endif  // QUANTD_CORE_QUANT_NIBBLE_PACK_H_
