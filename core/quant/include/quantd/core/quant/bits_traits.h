// Compile-time facts about an integer code width: the code range and the
// zero point of symmetric storage. One place for the -8 / 7 / 15 / 127 / 255
// that INT4 and INT8 quantizers use (as MLAS's BitsTraits<qbits, signed>).
//
// Constants only; thread-safe.
#ifndef QUANTD_CORE_QUANT_BITS_TRAITS_H_
#define QUANTD_CORE_QUANT_BITS_TRAITS_H_

namespace quantd::core::quant {

template <int kBitsParam, bool kSignedParam>
struct BitsTraits {
  static_assert(kBitsParam >= 2 && kBitsParam <= 8, "codes are 2..8 bits");
  static constexpr int kBits = kBitsParam;
  static constexpr bool kSigned = kSignedParam;
  static constexpr int kLevels = 1 << kBits;                            // 16 for 4 bits
  static constexpr int kMin = kSigned ? -(kLevels / 2) : 0;             // -8 or 0
  static constexpr int kMax = kSigned ? kLevels / 2 - 1 : kLevels - 1;  // 7 or 15
  // Zero point of symmetric quantization in this type: 0 for signed codes,
  // the middle code (8 for 4 bits, 128 for 8) for unsigned ones.
  static constexpr int kSymmetricZeroPoint = kSigned ? 0 : kLevels / 2;
  // Mask of one code in a packed byte (0xf for 4 bits).
  static constexpr unsigned kMask = static_cast<unsigned>(kLevels - 1);
};

using Int4Bits = BitsTraits<4, true>;
using Uint4Bits = BitsTraits<4, false>;
using Int8Bits = BitsTraits<8, true>;
using Uint8Bits = BitsTraits<8, false>;

static_assert(Int4Bits::kMin == -8 && Int4Bits::kMax == 7);
static_assert(Uint4Bits::kMax == 15 && Uint4Bits::kSymmetricZeroPoint == 8);
static_assert(Int8Bits::kMin == -128 && Int8Bits::kMax == 127 && Uint8Bits::kMax == 255);

}  // namespace quantd::core::quant

#endif  // QUANTD_CORE_QUANT_BITS_TRAITS_H_
