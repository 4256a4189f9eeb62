#include "quantd/core/quant/nibble_pack.h"

#include <cstring>

namespace quantd::core::quant {

void TransposeNibbles(const uint8_t* in, int64_t rows, int64_t cols, uint8_t* out) {
  std::memset(out, 0, static_cast<size_t>(NibbleBytes(rows * cols)));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) OrNibble(out, c * rows + r, GetNibble(in, r * cols + c));
  }
}

}  // namespace quantd::core::quant
