// Block-wise 4-bit weight quantization in the two layouts ONNX Runtime reads:
//
//  * com.microsoft.MatMulNBits (bits=4): for a weight B[K, N] (MatMul's
//    second input), column n is cut into ceil(K / bs) blocks of bs rows.
//    packed  uint8 [N, blocks, bs/2]   row k = b*bs + j -> byte j/2 of block b,
//                                      low nibble when j is even
//    scales  T     [N * blocks]        T = the weight's float type
//    zero_points uint8 [N * ceil(blocks/2)]  (asymmetric only) two per byte,
//                                      low nibble first; an unused last high
//                                      nibble is 8
//    Bit-exact with ORT's MLAS RTN (onnxruntime/core/mlas/lib/q4_dq.cpp,
//    BlockwiseQuantizer::quantizeAndTranspose): all math in float32,
//    symmetric scale = T(m / -8) with m the block value of largest magnitude
//    (a tie picks the minimum), zero point 8; asymmetric range widened to
//    include 0, scale = T((max - min) / 15), zp = clamp(roundf(-min / scale));
//    q = clamp(roundf(w * (1 / float(scale)) + zp), 0, 15). Bytes for rows
//    beyond K are 0. For odd K the unused high nibble of the last byte repeats
//    the code of row K-2 when MLAS's thread block holds it (MLAS reuses its
//    scratch), else 0: reproduced so files are byte-identical.
//
//  * ONNX QDQ (DequantizeLinear-21, axis 0, block_size): the quantized weight
//    keeps B's shape [K, N], row-major, two codes per byte (low nibble =
//    even flat index). int4 (symmetric, zp 0, codes -8..7) or uint4 with
//    zero points [blocks, N] packed the same way. Scales [blocks, N].
//    Bit-exact with MLAS BlockwiseQDQQuantizer::QuantizeColumnWise:
//    q = clamp(int(roundf(w * r)) + zp, qmin, qmax).
//
// `algorithm kSearch` replaces the RTN scale (and zero point) of each block by
// the best of a grid of clipped ranges plus a least-squares refit, measured by
// the squared error of the dequantized block; RTN is one of the candidates and
// wins ties, so a block is never worse than RTN.
//
// Kernels work on caller-owned buffers; they never allocate, log or do I/O.
// They are thread-compatible: different threads may quantize disjoint column
// ranges of the same output concurrently. QDQ packs along rows, so its ranges
// must start at even columns and N must be even (with odd N, rows share bytes:
// one thread must do the whole tensor).
//
// Variants: QuantizeInt4_ref is the scalar reference, a plain transliteration
// of the MLAS algorithm. QuantizeInt4 runs tile kernels of the active CPU
// level (quantd/core/base/cpu_features.h: scalar; x86-64 SSE2 and AVX2) that
// perform the same float operations, so every level writes the reference's
// bytes (tests run each level against QuantizeInt4_ref on ragged shapes). The
// search measures block errors with one summation order on every level, so
// its choices do not depend on the CPU either.
#ifndef QUANTD_CORE_QUANT_INT4_BLOCKWISE_H_
#define QUANTD_CORE_QUANT_INT4_BLOCKWISE_H_

#include <cstdint>

#include "quantd/core/base/half.h"
#include "quantd/core/quant/bits_traits.h"

namespace quantd::core::quant {

// FP16 as stored in ONNX (IEEE binary16 bits).
struct Half {
  uint16_t bits;
};
static_assert(sizeof(Half) == 2, "Half is the raw FP16 bits");

// bfloat16 bits (the high half of a float32): a checkpoint's weights, read
// in place of the float32 matrix they widen to exactly.
struct Bfloat16 {
  uint16_t bits;
};
static_assert(sizeof(Bfloat16) == 2, "Bfloat16 is the raw bits");

// Float element traits: how a weight type converts to/from the float32 math,
// and the type its scales are stored in (FLOAT16 weights have FLOAT16 scales,
// as ONNX requires; a bfloat16 source stands for float32 weights, so its
// scales are float32).
template <typename T>
struct ElementTraits;
template <>
struct ElementTraits<float> {
  using Scale = float;
  static float ToFloat(float v) { return v; }
  static float FromFloat(float v) { return v; }
};
template <>
struct ElementTraits<Half> {
  using Scale = Half;
  static float ToFloat(Half v) { return HalfToFloat(v.bits); }
  static Half FromFloat(float v) { return Half{FloatToHalf(v)}; }
};
template <>
struct ElementTraits<Bfloat16> {
  using Scale = float;
  static float ToFloat(Bfloat16 v) { return Bfloat16ToFloat(v.bits); }
};
template <typename T>
using ScaleOf = typename ElementTraits<T>::Scale;

// A read-only weight matrix B[K, N]: element (k, n) is at
// data[k * row_stride + n * col_stride]. Row-major [K, N] has (N, 1); the
// transposed storage [N, K] (Gemm transB, folded Transpose) has (1, K).
template <typename T>
struct WeightView {
  const T* data = nullptr;
  int64_t k = 0;
  int64_t n = 0;
  int64_t row_stride = 0;
  int64_t col_stride = 1;
};

enum class Int4Layout { kMatMulNBits, kQdq };
enum class Int4Algorithm { kRtn, kSearch };

struct Int4Options {
  int block_size = 32;  // 16, 32, 64, 128 or 256
  bool symmetric = true;
  Int4Layout layout = Int4Layout::kMatMulNBits;
  Int4Algorithm algorithm = Int4Algorithm::kRtn;
  // kQdq only: column-major storage. The code of W[r][c] is nibble c*K + r
  // (not r*N + c) and scales and zero points are [N, blocks] (not
  // [blocks, N]): an embedding E [vocab, hidden] viewed as W [hidden, vocab]
  // and quantized along hidden comes out in E's own layout, written column
  // after column. The codes' values are the same either way.
  bool n_major = false;
};

// Buffer sizes of one quantized weight (bytes, or elements for scales).
struct Int4Sizes {
  int64_t blocks = 0;        // ceil(K / block_size)
  int64_t packed_bytes = 0;  // MatMulNBits: N*blocks*bs/2; QDQ: ceil(K*N/2)
  int64_t scale_count = 0;   // N * blocks
  int64_t zero_point_bytes =
      0;  // asymmetric only; MatMulNBits N*ceil(blocks/2), QDQ ceil(blocks*N/2)
};
Int4Sizes ComputeInt4Sizes(int64_t k, int64_t n, const Int4Options& options);

// Quantizes columns [n_begin, n_end) of `w`. Returns false, with the outputs
// of the range unspecified, when the range holds a NaN or infinite weight
// (checked block by block while the block is in cache, before any of its
// codes is computed); the caller refuses the tensor.
// REQUIRES: `packed` and `zero_points` (when asymmetric) cover the whole
// tensor and were zero-filled by the caller; `scales` covers N*blocks;
// `zero_points` may be null when symmetric; for kQdq n_begin is even.
// Scale order: MatMulNBits [N, blocks]; QDQ [blocks, N] ([N, blocks] with
// n_major).
template <typename T>
bool QuantizeInt4(const WeightView<T>& w, const Int4Options& options, int64_t n_begin,
                  int64_t n_end, uint8_t* packed, ScaleOf<T>* scales, uint8_t* zero_points);

// Quality sums QuantizeInt4 gathers while each tile is in cache (the fused
// quality report, quality.h): the sums over every weight of the range, and
// the probe products X W, X W' of the 64-column groups in the sample.
// Caller-owned; one per thread; the sums are added to.
struct Int4QualitySums {
  // In. probe: X [probe_rows, k] row-major, or null for no X W sums.
  const float* probe = nullptr;
  int probe_rows = 0;
  uint64_t sample_threshold = 0;  // ProbeGroupSampled(column / 64, threshold)
  // Scratch of 2 * probe_rows * (n_end - n_begin) floats (when probe is set).
  float* scratch = nullptr;
  // Out: sum w^2, sum (w - w')^2, max |w - w'|, and over sampled columns
  // sum (X w)^2 and sum (X w - X w')^2.
  double sum_w2 = 0, sum_e2 = 0, max_abs = 0, sum_y2 = 0, sum_ye2 = 0;
};

// Whether QuantizeInt4 fills Int4QualitySums for these options and strides
// (the tiled RTN path: rows or columns contiguous); otherwise the caller
// measures quality in a separate pass.
bool Int4FusedQualitySupported(const Int4Options& options, int64_t row_stride, int64_t col_stride);

// QuantizeInt4 that also adds the quality of the range to *sums (same bytes).
// REQUIRES: Int4FusedQualitySupported(options, w.row_stride, w.col_stride); n_begin is a
// multiple of 64 (sampling groups are whole).
template <typename T>
bool QuantizeInt4(const WeightView<T>& w, const Int4Options& options, int64_t n_begin,
                  int64_t n_end, uint8_t* packed, ScaleOf<T>* scales, uint8_t* zero_points,
                  Int4QualitySums* sums);

// The scalar reference of QuantizeInt4: same contract and bytes for finite
// weights (REQUIRES: weights are finite); slow (one column and one block at a
// time). For tests and for checking files.
template <typename T>
void QuantizeInt4_ref(const WeightView<T>& w, const Int4Options& options, int64_t n_begin,
                      int64_t n_end, uint8_t* packed, ScaleOf<T>* scales, uint8_t* zero_points);

// Dequantizes columns [n_begin, n_end) into `out`, column-major with leading
// dimension w_k: out[(n - n_begin) * k + row] (float32, as ORT computes it:
// (q - zp) * float(scale)). T is the scales' type (ScaleOf the weights').
template <typename T>
void DequantizeInt4(int64_t k, int64_t n, const Int4Options& options, const uint8_t* packed,
                    const T* scales, const uint8_t* zero_points, int64_t n_begin, int64_t n_end,
                    float* out);

}  // namespace quantd::core::quant

#endif  // QUANTD_CORE_QUANT_INT4_BLOCKWISE_H_
