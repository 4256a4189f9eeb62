// Apple MLX affine quantization (`mx.quantize(w, group_size, bits)`, mode
// "affine"), bit for bit as MLX's CPU kernel (mlx/backend/cpu/quantized.cpp,
// MLX >= 0.23.2; unchanged through 0.32).
//
// A weight W[rows, cols] (cols = the last axis, a multiple of group_size) is
// cut into groups of `group_size` consecutive elements of a row. Per group,
// all math in float32 on the weight's values converted exactly to float:
//   n_bins = 2^bits - 1; w_min, w_max = the group's min and max
//   mask  = |w_min| > |w_max|
//   scale = max((w_max - w_min) / n_bins, 1e-7f), negated when !mask
//   edge  = mask ? w_min : w_max
//   q0    = rint(edge / scale)                        (ties to even)
//   q0 != 0:  scale = edge / q0, bias = edge;  else bias = 0
//   code  = clamp(rint((w - bias) / scale), 0, n_bins)
// `scale` and `bias` are stored in the weight's type (round to nearest even;
// a NaN bfloat16 is 0x7FC0, as MLX's software bfloat16 writes it).
// NaN weights are skipped by min/max (as std::max/min with the running value
// first) and get code 0 (what MLX on Apple silicon computes); infinities give
// NaN scales and code 0. Nothing else is undefined.
//
// Packed layout (row-major, no padding between rows; a row is cols*bits/8
// bytes): an LSB-first bit stream, element k of a row at bit offset k*bits.
// For 2/4/8 bits that is 32/bits codes per little-endian uint32 (MLX's uint32
// words); for 3/5/6 bits it is MLX's byte packing (8 codes in 3 bytes, 8 in
// 5, 4 in 3). MLX stores the packed weight as uint32 [rows, cols*bits/32];
// scales and biases are [rows, cols/group_size] in the weight's type.
//
// MLX's Metal kernel (what mlx_lm.convert uses on a Mac's GPU) is not this
// one: its running max starts at 0 and it rounds halves away from zero, so
// all-negative groups and exact .5 ties can differ from a GPU conversion.
//
// Kernels never allocate, log or do I/O. Thread-compatible: rows are
// independent, so threads may quantize disjoint row ranges (offset the
// pointers by the row).
//
// Variants: QuantizeMlxAffine_ref is the scalar reference; the AVX2 variant
// (min/max and codes eight lanes at a time, the same float operations) is
// byte-identical and QuantizeMlxAffine picks it at run time; it is declared
// in core/quant's private mlx_affine_avx2.h.
#ifndef QUANTD_CORE_QUANT_MLX_AFFINE_H_
#define QUANTD_CORE_QUANT_MLX_AFFINE_H_

#include <bit>
#include <cstdint>

namespace quantd::core::quant {

static_assert(std::endian::native == std::endian::little,
              "MLX's packed uint32 words are little-endian");

// Float types MLX quantizes (its scales and biases take the same type).
enum class MlxFloatType { kF32, kF16, kBF16 };

inline int MlxFloatTypeSize(MlxFloatType t) { return t == MlxFloatType::kF32 ? 4 : 2; }

// Bit-width facts of one MLX affine code width.
template <int Bits>
struct MlxAffineBitsTraits {
  static_assert(Bits == 2 || Bits == 3 || Bits == 4 || Bits == 5 || Bits == 6 || Bits == 8,
                "MLX affine quantization supports 2, 3, 4, 5, 6 and 8 bits");
  static constexpr int kBits = Bits;
  static constexpr uint32_t kMaxCode = (1u << Bits) - 1;  // n_bins
  static constexpr bool kPowerOfTwo = (Bits & (Bits - 1)) == 0;
  // A pack: the smallest run of codes that ends on a byte boundary as MLX
  // writes it (a uint32 word for 2/4/8 bits).
  static constexpr int kCodesPerPack = kPowerOfTwo ? 32 / Bits : (Bits == 6 ? 4 : 8);
  static constexpr int kBytesPerPack = kPowerOfTwo ? 4 : (Bits == 5 ? 5 : 3);
  static_assert(kCodesPerPack * kBits == kBytesPerPack * 8, "a pack is whole bytes");
};

inline constexpr int kMlxAffineDefaultBits = 4;
inline constexpr int kMlxAffineDefaultGroupSize = 64;
inline constexpr float kMlxAffineMinScale = 1e-7f;

inline bool MlxAffineBitsSupported(int bits) {
  return bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8;
}
inline bool MlxAffineGroupSizeSupported(int group_size) {
  return group_size == 32 || group_size == 64 || group_size == 128;
}

// Sizes of one quantized row of `cols` elements.
// REQUIRES: cols % group_size == 0, supported bits and group size.
inline int64_t MlxAffinePackedBytesPerRow(int64_t cols, int bits) { return cols * bits / 8; }
inline int64_t MlxAffinePackedWordsPerRow(int64_t cols, int bits) { return cols * bits / 32; }
inline int64_t MlxAffineGroupsPerRow(int64_t cols, int group_size) { return cols / group_size; }

// Quantizes rows [0, rows) of `w`: row r starts at element r * ld of `w`
// (elements of `type`; ld >= cols). Writes
//   packed: rows * MlxAffinePackedBytesPerRow(cols, bits) bytes, row-major;
//   scales, biases: rows * cols / group_size elements of `type`, row-major.
// REQUIRES: MlxAffineBitsSupported(bits), MlxAffineGroupSizeSupported
// (group_size), cols % group_size == 0; output buffers do not overlap `w`.
void QuantizeMlxAffine(MlxFloatType type, int bits, int group_size, const void* w, int64_t rows,
                       int64_t cols, int64_t ld, uint8_t* packed, void* scales, void* biases);
void QuantizeMlxAffine_ref(MlxFloatType type, int bits, int group_size, const void* w, int64_t rows,
                           int64_t cols, int64_t ld, uint8_t* packed, void* scales, void* biases);

// w' = code * float(scale) + float(bias) for rows [0, rows), written to
// `out` row-major with leading dimension cols (float32 math; MLX computes
// the same product in the weight's type inside its matmul).
// REQUIRES: the same geometry preconditions as QuantizeMlxAffine.
// The AVX2 variant (taken when the CPU has AVX2 and F16C) writes the same
// bits as DequantizeMlxAffine_ref, the scalar reference.
void DequantizeMlxAffine(MlxFloatType type, int bits, int group_size, const uint8_t* packed,
                         const void* scales, const void* biases, int64_t rows, int64_t cols,
                         float* out);
void DequantizeMlxAffine_ref(MlxFloatType type, int bits, int group_size, const uint8_t* packed,
                             const void* scales, const void* biases, int64_t rows, int64_t cols,
                             float* out);

}  // namespace quantd::core::quant

#endif  // QUANTD_CORE_QUANT_MLX_AFFINE_H_
