#include "quantd/core/quant/mlx_affine.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/quant/mlx_affine_avx2.h"
#include "gtest/gtest.h"
#include "quantd/core/base/half.h"

namespace quantd::core::quant {
namespace {

// --- An independent transliteration of MLX's published affine formula. ---
// One group at a time, plain float32 arithmetic, codes written into a plain
// LSB-first bit stream (element k of a row at bit k*bits), which is what both
// of MLX's packings (uint32 words for 2/4/8 bits, byte triplets/quintuplets
// for 3/5/6 bits) amount to on a little-endian machine.

uint16_t BitsOfBfloat16(float f) {  // MLX's software bfloat16
  if (f != f) return 0x7FC0;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t lsb = (u >> 16) & 1;
  return static_cast<uint16_t>((u + 0x7FFF + lsb) >> 16);
}

float ToFloat(MlxFloatType t, const uint8_t* p) {
  if (t == MlxFloatType::kF32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  if (t == MlxFloatType::kF16) return HalfToFloat(h);
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void FromFloat(MlxFloatType t, float f, uint8_t* p) {
  if (t == MlxFloatType::kF32) {
    std::memcpy(p, &f, 4);
  } else {
    uint16_t h = t == MlxFloatType::kF16 ? FloatToHalf(f) : BitsOfBfloat16(f);
    std::memcpy(p, &h, 2);
  }
}

struct Quantized {
  std::vector<uint8_t> packed, scales, biases;
};

Quantized NaiveQuantize(MlxFloatType t, int bits, int gs, const std::vector<uint8_t>& w,
                        int64_t rows, int64_t cols, int64_t ld) {
  const int es = MlxFloatTypeSize(t);
  const float n_bins = static_cast<float>((1 << bits) - 1);
  const int64_t groups = cols / gs;
  Quantized q;
  q.packed.assign(rows * cols * bits / 8, 0);
  q.scales.assign(rows * groups * es, 0);
  q.biases.assign(rows * groups * es, 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      std::vector<float> x(gs);
      for (int j = 0; j < gs; ++j) x[j] = ToFloat(t, &w[(r * ld + g * gs + j) * es]);
      float lo = INFINITY, hi = -INFINITY;
      for (float v : x) {
        if (v < lo) lo = v;  // NaN never compares, so it is skipped
        if (v > hi) hi = v;
      }
      bool neg_edge = std::fabs(lo) > std::fabs(hi);
      float scale = (hi - lo) / n_bins;
      if (scale < 1e-7f) scale = 1e-7f;
      if (!neg_edge) scale = -scale;
      float edge = neg_edge ? lo : hi;
      float q0 = std::nearbyint(edge / scale);
      float bias = 0.0f;
      if (q0 != 0.0f) {
        scale = edge / q0;
        bias = edge;
      }
      for (int j = 0; j < gs; ++j) {
        float c = std::nearbyint((x[j] - bias) / scale);
        uint32_t code = 0;
        if (c >= n_bins) {
          code = static_cast<uint32_t>(n_bins);
        } else if (c > 0.0f) {
          code = static_cast<uint32_t>(c);
        }
        const int64_t bit = (r * cols + g * gs + j) * bits;
        for (int b = 0; b < bits; ++b) {
          if ((code >> b) & 1)
            q.packed[(bit + b) / 8] |= static_cast<uint8_t>(1u << ((bit + b) % 8));
        }
      }
      FromFloat(t, scale, &q.scales[(r * groups + g) * es]);
      FromFloat(t, bias, &q.biases[(r * groups + g) * es]);
    }
  }
  return q;
}

// --- Test data ---------------------------------------------------------------

std::string TypeName(MlxFloatType t) {
  switch (t) {
    case MlxFloatType::kF32:
      return "F32";
    case MlxFloatType::kF16:
      return "F16";
    case MlxFloatType::kBF16:
      return "BF16";
  }
  return "?";
}

// A matrix of `rows` x `cols` in type t, leading dimension ld (padding holds
// a poison value the kernel must not read into any group).
struct Matrix {
  MlxFloatType type;
  int64_t rows, cols, ld;
  std::vector<uint8_t> bytes;
  void Set(int64_t r, int64_t c, float v) {
    FromFloat(type, v, &bytes[(r * ld + c) * MlxFloatTypeSize(type)]);
  }
  void SetBits(int64_t r, int64_t c, uint32_t raw) {
    std::memcpy(&bytes[(r * ld + c) * MlxFloatTypeSize(type)], &raw, MlxFloatTypeSize(type));
  }
};

Matrix MakeMatrix(MlxFloatType t, int64_t rows, int64_t cols, int64_t ld) {
  Matrix m{t, rows, cols, ld, std::vector<uint8_t>(rows * ld * MlxFloatTypeSize(t))};
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = cols; c < ld; ++c) m.Set(r, c, 1e4f);
  return m;
}

float LargestFinite(MlxFloatType t) {
  switch (t) {
    case MlxFloatType::kF32:
      return std::numeric_limits<float>::max();
    case MlxFloatType::kF16:
      return kHalfMax;
    case MlxFloatType::kBF16:
      return Bfloat16ToFloat(0x7F7F);
  }
  return 0;
}

// Group patterns, each filling group g of row r.
enum class Pattern {
  kGaussian,
  kAllNegative,
  kAllEqualPositive,
  kAllEqualNegative,
  kAllZero,
  kZeroCrossing,
  kEdgeTieNegative,  // edge/scale == -(m + 0.5) exactly, |min| > |max|
  kEdgeTiePositive,  // edge/scale == -(m + 0.5) exactly, max is the edge
  kDenormal,
  kLargeMixed,
  kLargestFinite,
  kNarrowRange,  // range below n_bins * 1e-7: the 1e-7 floor applies
  kCount,
};

// Whether a group with extremes lo, hi has edge/scale at an exact .5 (the
// kernel's float32 formula) with the edge on the requested side.
bool IsEdgeTie(float lo, float hi, int bits, bool negative_edge) {
  const float n_bins = static_cast<float>((1 << bits) - 1);
  const bool mask = std::fabs(lo) > std::fabs(hi);
  if (mask != negative_edge) return false;
  float scale = std::max((hi - lo) / n_bins, 1e-7f);
  scale = mask ? scale : -scale;
  const float ratio = (mask ? lo : hi) / scale;
  return ratio - std::floor(ratio) == 0.5f;
}

float RoundTo(MlxFloatType t, float v) {
  uint8_t b[4];
  FromFloat(t, v, b);
  return ToFloat(t, b);
}

// A group whose edge/scale is an exact .5 tie. First choice, exact in most
// types: step s = 1/8, m = 2^(bits-1); negative edge lo = -(m + 0.5) s with
// hi = lo + n_bins s; positive edge hi = -lo = n_bins s / 2. Then rint gives
// the even -m, the refitted scale edge / -m is exact, and the group also holds
// values whose (w - bias) / scale is an exact .5 (code ties). When the type
// cannot hold those extremes (BF16 at 8 bits), a search over the BF16 grid
// finds another tie pair.
void FillTieGroup(Matrix& m, int64_t r, int64_t c0, int gs, int bits, bool negative_edge) {
  const float s = 0.125f;
  const float half_m = static_cast<float>(1 << (bits - 1));
  const float n_bins = static_cast<float>((1 << bits) - 1);
  float lo, hi;
  if (negative_edge) {
    lo = -(half_m + 0.5f) * s;
    hi = lo + n_bins * s;
  } else {
    hi = 0.5f * n_bins * s;
    lo = -hi;
  }
  lo = RoundTo(m.type, lo);
  hi = RoundTo(m.type, hi);
  bool found = IsEdgeTie(lo, hi, bits, negative_edge);
  for (uint32_t a = 0x3E80; !found && a <= 0x4080; ++a) {    // |lo| in [0.25, 4]
    for (uint32_t b = 0x3E80; !found && b <= 0x4080; ++b) {  // |hi| in [0.25, 4]
      lo = -Bfloat16ToFloat(static_cast<uint16_t>(a));
      hi = Bfloat16ToFloat(static_cast<uint16_t>(b));
      found = IsEdgeTie(lo, hi, bits, negative_edge);
    }
  }
  const float edge = negative_edge ? lo : hi;
  const float refit = edge / -half_m;
  for (int j = 0; j < gs; ++j) {
    float v;
    if (j == 0) {
      v = lo;
    } else if (j == 1) {
      v = hi;
    } else if (j % 2 == 0) {
      // edge + (k + 0.5) * refit: code ties near the edge.
      v = RoundTo(m.type, edge + (static_cast<float>((j / 2) % 3) + 0.5f) * refit);
    } else {
      v = RoundTo(m.type, lo + (hi - lo) * static_cast<float>(j) / static_cast<float>(gs));
    }
    m.Set(r, c0 + j, std::min(std::max(v, lo), hi));
  }
}

void FillGroup(Matrix& m, int64_t r, int64_t g, int gs, int bits, Pattern p, std::mt19937& rng) {
  const int64_t c0 = g * gs;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  const float big = LargestFinite(m.type);
  for (int j = 0; j < gs; ++j) {
    float v = 0.0f;
    switch (p) {
      case Pattern::kGaussian:
        v = 0.02f * normal(rng);
        break;
      case Pattern::kAllNegative:
        v = -0.5f - unit(rng);
        break;
      case Pattern::kAllEqualPositive:
        v = 0.3f;
        break;
      case Pattern::kAllEqualNegative:
        v = -1.75f;
        break;
      case Pattern::kAllZero:
        v = (j % 2) ? -0.0f : 0.0f;
        break;
      case Pattern::kZeroCrossing:
        v = -1.0f + 2.0f * static_cast<float>(j) / (gs - 1);
        break;
      case Pattern::kLargeMixed:
        v = (j % 2 ? 1.0f : -1.0f) * big * 0.25f * unit(rng);
        break;
      case Pattern::kLargestFinite:
        v = (j % 3 == 0) ? big : (j % 3 == 1 ? -big : 0.0f);
        break;
      case Pattern::kNarrowRange:
        v = 1.0f + static_cast<float>(j % 2) * 1.1920929e-07f;
        break;
      default:
        break;
    }
    m.Set(r, c0 + j, v);
  }
  if (p == Pattern::kEdgeTieNegative || p == Pattern::kEdgeTiePositive) {
    FillTieGroup(m, r, c0, gs, bits, p == Pattern::kEdgeTieNegative);
  } else if (p == Pattern::kDenormal) {
    // Raw subnormal bit patterns of the type, both signs.
    const uint32_t mant_mask = m.type == MlxFloatType::kF32   ? 0x7FFFFFu
                               : m.type == MlxFloatType::kF16 ? 0x3FFu
                                                              : 0x7Fu;
    const uint32_t sign = m.type == MlxFloatType::kF32 ? 0x80000000u : 0x8000u;
    std::uniform_int_distribution<uint32_t> mant(1, mant_mask);
    for (int j = 0; j < gs; ++j) m.SetBits(r, c0 + j, mant(rng) | ((j % 3 == 0) ? sign : 0u));
  }
}

using Param = std::tuple<int, int, MlxFloatType>;  // bits, group size, type

class MlxAffineTest : public ::testing::TestWithParam<Param> {};

void ExpectSameBytes(const Quantized& want, const std::vector<uint8_t>& packed,
                     const std::vector<uint8_t>& scales, const std::vector<uint8_t>& biases,
                     const std::string& what) {
  EXPECT_EQ(want.packed, packed) << what << ": packed codes differ";
  EXPECT_EQ(want.scales, scales) << what << ": scales differ";
  EXPECT_EQ(want.biases, biases) << what << ": biases differ";
}

using KernelFn = void (*)(MlxFloatType, int, int, const void*, int64_t, int64_t, int64_t, uint8_t*,
                          void*, void*);

void RunKernel(KernelFn fn, const Matrix& m, int bits, int gs, std::vector<uint8_t>* packed,
               std::vector<uint8_t>* scales, std::vector<uint8_t>* biases) {
  const int es = MlxFloatTypeSize(m.type);
  packed->assign(m.rows * MlxAffinePackedBytesPerRow(m.cols, bits), 0xAB);
  scales->assign(m.rows * (m.cols / gs) * es, 0xAB);
  biases->assign(m.rows * (m.cols / gs) * es, 0xAB);
  fn(m.type, bits, gs, m.bytes.data(), m.rows, m.cols, m.ld, packed->data(), scales->data(),
     biases->data());
}

// Every pattern in every group position, on ragged row counts and with a
// leading dimension beyond the row.
TEST_P(MlxAffineTest, KernelMatchesNaiveFormulaOnAdversarialGroups) {
  const auto [bits, gs, type] = GetParam();
  std::mt19937 rng(1234 + bits * 7 + gs);
  const int n_patterns = static_cast<int>(Pattern::kCount);
  for (int64_t rows : {1, 3, 7}) {
    for (int64_t groups : {1, 3}) {
      const int64_t cols = groups * gs;
      const int64_t ld = cols + (rows == 3 ? 8 : 0);
      Matrix m = MakeMatrix(type, rows, cols, ld);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
          FillGroup(m, r, g, gs, bits, static_cast<Pattern>((r * groups + g) % n_patterns), rng);
        }
      }
      const Quantized want = NaiveQuantize(type, bits, gs, m.bytes, rows, cols, ld);
      const std::string what = absl::StrCat(TypeName(type), " bits=", bits, " group=", gs,
                                            " shape=[", rows, ",", cols, "] ld=", ld);
      std::vector<uint8_t> packed, scales, biases;
      RunKernel(&QuantizeMlxAffine_ref, m, bits, gs, &packed, &scales, &biases);
      ExpectSameBytes(want, packed, scales, biases, what + " ref");
      RunKernel(&QuantizeMlxAffine, m, bits, gs, &packed, &scales, &biases);
      ExpectSameBytes(want, packed, scales, biases, what + " dispatch");
      if (MlxAffineAvx2Available()) {
        RunKernel(&QuantizeMlxAffine_avx2, m, bits, gs, &packed, &scales, &biases);
        ExpectSameBytes(want, packed, scales, biases, what + " avx2");
      }
      if (MlxAffineAvx512Available(bits)) {
        RunKernel(&QuantizeMlxAffine_avx512, m, bits, gs, &packed, &scales, &biases);
        ExpectSameBytes(want, packed, scales, biases, what + " avx512");
      }
    }
  }
}

// Every pattern alone in a one-group row (so a mismatch names the pattern).
TEST_P(MlxAffineTest, EachPatternAlone) {
  const auto [bits, gs, type] = GetParam();
  std::mt19937 rng(99);
  for (int p = 0; p < static_cast<int>(Pattern::kCount); ++p) {
    Matrix m = MakeMatrix(type, 1, gs, gs);
    FillGroup(m, 0, 0, gs, bits, static_cast<Pattern>(p), rng);
    const Quantized want = NaiveQuantize(type, bits, gs, m.bytes, 1, gs, gs);
    std::vector<uint8_t> packed, scales, biases;
    RunKernel(&QuantizeMlxAffine_ref, m, bits, gs, &packed, &scales, &biases);
    ExpectSameBytes(want, packed, scales, biases, absl::StrCat("pattern ", p, " ref"));
    if (MlxAffineAvx2Available()) {
      RunKernel(&QuantizeMlxAffine_avx2, m, bits, gs, &packed, &scales, &biases);
      ExpectSameBytes(want, packed, scales, biases, absl::StrCat("pattern ", p, " avx2"));
    }
    if (MlxAffineAvx512Available(bits)) {
      RunKernel(&QuantizeMlxAffine_avx512, m, bits, gs, &packed, &scales, &biases);
      ExpectSameBytes(want, packed, scales, biases, absl::StrCat("pattern ", p, " avx512"));
    }
  }
}

// The tie groups really are ties (so the test above exercises rint's
// ties-to-even, not only the data around it).
TEST_P(MlxAffineTest, TieGroupsHitExactHalf) {
  const auto [bits, gs, type] = GetParam();
  for (bool negative_edge : {true, false}) {
    Matrix m = MakeMatrix(type, 1, gs, gs);
    FillTieGroup(m, 0, 0, gs, bits, negative_edge);
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < gs; ++j) {
      float v = ToFloat(type, &m.bytes[j * MlxFloatTypeSize(type)]);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const float n_bins = static_cast<float>((1 << bits) - 1);
    const bool mask = std::fabs(lo) > std::fabs(hi);
    ASSERT_EQ(mask, negative_edge);
    float scale = (hi - lo) / n_bins;
    scale = mask ? scale : -scale;
    const float ratio = (mask ? lo : hi) / scale;
    EXPECT_EQ(ratio - std::floor(ratio), 0.5f) << "edge/scale = " << ratio;
    // And the stored bias is the edge, the stored scale edge / q0 with q0 even.
    std::vector<uint8_t> packed, scales, biases;
    RunKernel(&QuantizeMlxAffine, m, bits, gs, &packed, &scales, &biases);
    const float q0 = std::nearbyint(ratio);
    EXPECT_EQ(std::fmod(q0, 2.0f), 0.0f);
    EXPECT_EQ(ToFloat(type, biases.data()), mask ? lo : hi);
  }
}

// The AVX2 dequantizer writes the reference's bits: every code value of the
// width (random packed bytes), scales and biases of the stored type, rows
// of several groups.
TEST_P(MlxAffineTest, DequantizeVariantsAgree) {
  const auto [bits, gs, type] = GetParam();
  const int64_t rows = 5, cols = 3 * gs;
  const int64_t groups = rows * cols / gs;
  std::mt19937 rng(bits * 1000 + gs);
  std::vector<uint8_t> packed(rows * MlxAffinePackedBytesPerRow(cols, bits));
  for (uint8_t& b : packed) b = static_cast<uint8_t>(rng());
  std::normal_distribution<float> normal(0.0f, 0.05f);
  Matrix sm = MakeMatrix(type, 1, groups, groups), bm = MakeMatrix(type, 1, groups, groups);
  for (int64_t g = 0; g < groups; ++g) {
    sm.Set(0, g, std::fabs(normal(rng)) / 15.0f + 1e-6f);
    bm.Set(0, g, normal(rng));
  }
  std::vector<float> got(rows * cols), want(rows * cols);
  DequantizeMlxAffine(type, bits, gs, packed.data(), sm.bytes.data(), bm.bytes.data(), rows, cols,
                      got.data());
  DequantizeMlxAffine_ref(type, bits, gs, packed.data(), sm.bytes.data(), bm.bytes.data(), rows,
                          cols, want.data());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0)
      << "bits " << bits << " group " << gs;
}

// Dequantized Gaussian weights: every element within half a step (plus the
// rounding of scale and bias to the stored type) and SQNR near 6 dB per bit.
TEST_P(MlxAffineTest, RoundTripErrorIsBounded) {
  const auto [bits, gs, type] = GetParam();
  const int64_t rows = 16, cols = 4 * gs;
  Matrix m = MakeMatrix(type, rows, cols, cols);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) m.Set(r, c, normal(rng));
  std::vector<uint8_t> packed, scales, biases;
  RunKernel(&QuantizeMlxAffine, m, bits, gs, &packed, &scales, &biases);
  std::vector<float> out(rows * cols);
  DequantizeMlxAffine(type, bits, gs, packed.data(), scales.data(), biases.data(), rows, cols,
                      out.data());
  const int es = MlxFloatTypeSize(type);
  const float n_bins = static_cast<float>((1 << bits) - 1);
  // Relative precision of the stored scale/bias.
  const float eps_t = type == MlxFloatType::kF32   ? 1e-6f
                      : type == MlxFloatType::kF16 ? 1.0f / 1024
                                                   : 1.0f / 128;
  double sw2 = 0, se2 = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < cols / gs; ++g) {
      float lo = INFINITY, hi = -INFINITY;
      for (int j = 0; j < gs; ++j) {
        float v = ToFloat(type, &m.bytes[(r * cols + g * gs + j) * es]);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      const float step = (hi - lo) / n_bins;
      // Half a step inside the range; up to a step at the far end, where the
      // refitted scale edge / rint(edge / scale) can leave the range short.
      const float bound =
          step * 1.0001f + eps_t * (n_bins * step + std::fabs(lo) + std::fabs(hi)) + 1e-7f;
      for (int j = 0; j < gs; ++j) {
        const int64_t i = r * cols + g * gs + j;
        const float v = ToFloat(type, &m.bytes[i * es]);
        ASSERT_LE(std::fabs(out[i] - v), bound)
            << "row " << r << " col " << g * gs + j << " value " << v;
        sw2 += static_cast<double>(v) * v;
        se2 += static_cast<double>(out[i] - v) * (out[i] - v);
      }
    }
  }
  const double sqnr = 10.0 * std::log10(sw2 / se2);
  // Uniform quantization of a Gaussian group: about 6.02 dB a bit, less for
  // wider groups (a wider range per step); the stored type's rounding of
  // scale and bias caps the 8-bit BF16 case.
  double want = 6.02 * bits - (gs == 32 ? 3.5 : gs == 64 ? 4.5 : 5.5);
  if (type == MlxFloatType::kBF16) want = std::min(want, 30.0);
  EXPECT_GE(sqnr, want) << "SQNR " << sqnr << " dB";
}

INSTANTIATE_TEST_SUITE_P(
    AllWidths, MlxAffineTest,
    ::testing::Combine(::testing::Values(2, 3, 4, 5, 6, 8), ::testing::Values(32, 64, 128),
                       ::testing::Values(MlxFloatType::kF32, MlxFloatType::kF16,
                                         MlxFloatType::kBF16)),
    [](const ::testing::TestParamInfo<Param>& info) {
      return absl::StrCat("Bits", std::get<0>(info.param), "Group", std::get<1>(info.param),
                          TypeName(std::get<2>(info.param)));
    });

// Known codes: a group laid out so every code 0..n_bins appears, packed as
// MLX documents its layout (4 bits: eight nibbles per little-endian uint32,
// element 0 in the low nibble; 3 bits: 8 codes in 3 bytes).
TEST(MlxAffinePackingTest, FourBitWordsAreLowNibbleFirst) {
  std::vector<float> w(32);
  // min 0, max 15: scale = -1, edge = 15, q0 = -15 -> scale = -1, bias = 15;
  // code = rint((w - 15) / -1) = 15 - w.
  for (int j = 0; j < 32; ++j) w[j] = static_cast<float>(15 - (j % 16));
  std::vector<uint8_t> packed(16);
  float scale, bias;
  QuantizeMlxAffine(MlxFloatType::kF32, 4, 32, w.data(), 1, 32, 32, packed.data(), &scale, &bias);
  EXPECT_EQ(scale, -1.0f);
  EXPECT_EQ(bias, 15.0f);
  uint32_t word0, word1;
  std::memcpy(&word0, packed.data(), 4);
  std::memcpy(&word1, packed.data() + 4, 4);
  EXPECT_EQ(word0, 0x76543210u);
  EXPECT_EQ(word1, 0xFEDCBA98u);
}

TEST(MlxAffinePackingTest, ThreeBitCodesFillByteTriplets) {
  std::vector<float> w(32);
  for (int j = 0; j < 32; ++j) w[j] = static_cast<float>(7 - (j % 8));  // codes 0..7
  std::vector<uint8_t> packed(12);
  float scale, bias;
  QuantizeMlxAffine(MlxFloatType::kF32, 3, 32, w.data(), 1, 32, 32, packed.data(), &scale, &bias);
  // 0|1<<3|2<<6|3<<9|4<<12|5<<15|6<<18|7<<21 = 0xFAC688.
  EXPECT_EQ(packed[0], 0x88);
  EXPECT_EQ(packed[1], 0xC6);
  EXPECT_EQ(packed[2], 0xFA);
}

// The AVX-512 variant codes by multiplying with the scale's reciprocal and
// divides only where that product is near a half-integer: values placed on
// and one or two ulps either side of (c + 1/2) * scale + bias, for every code
// c, many scales and both signs of the edge, code as the reference's division.
TEST(MlxAffineNearTieTest, ReciprocalCodesEqualTheDivision) {
  std::mt19937 rng(4242);
  std::uniform_real_distribution<float> mag(0.5f, 2.0f);
  int groups_checked = 0;
  for (int bits : {4, 8}) {
    if (!MlxAffineAvx512Available(bits)) GTEST_SKIP() << "no AVX-512";
    const int gs = 64;
    const float n_bins = static_cast<float>((1 << bits) - 1);
    for (int trial = 0; trial < 200; ++trial) {
      // Extremes 0 and the edge (either sign): the kernel's q0 is -n_bins,
      // so scale = edge / -n_bins exactly as it derives it, bias = the edge.
      const bool negative = trial % 2 == 1;
      const float top = mag(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
      const float edge = negative ? -top : top;
      const float scale = edge / -n_bins;
      std::vector<float> w;
      for (int c = 0; c < 4 * (1 << bits) && w.size() + 6 <= static_cast<size_t>(gs) - 2; ++c) {
        // Codes from a different start each trial, so every code is met.
        const int code = (c + trial * 11) % (1 << bits);
        const float at = (static_cast<float>(code) + 0.5f) * scale + edge;
        float lo = std::nextafter(at, -INFINITY), hi = std::nextafter(at, INFINITY);
        for (float x : {std::nextafter(lo, -INFINITY), lo, at, hi, std::nextafter(hi, INFINITY)}) {
          // Stay inside the group's range so the extremes stay 0 and edge.
          if (negative ? (x >= edge && x <= 0.0f) : (x <= edge && x >= 0.0f)) w.push_back(x);
        }
      }
      while (w.size() < static_cast<size_t>(gs) - 2) w.push_back(0.5f * edge);
      w.push_back(0.0f);
      w.push_back(edge);
      std::vector<uint8_t> a(gs * bits / 8), b(gs * bits / 8);
      float sa, ba, sb, bb;
      QuantizeMlxAffine_ref(MlxFloatType::kF32, bits, gs, w.data(), 1, gs, gs, a.data(), &sa, &ba);
      QuantizeMlxAffine_avx512(MlxFloatType::kF32, bits, gs, w.data(), 1, gs, gs, b.data(), &sb,
                               &bb);
      ASSERT_EQ(ba, edge) << "bias is the edge";
      EXPECT_EQ(a, b) << "bits " << bits << " trial " << trial << " scale " << sa;
      EXPECT_EQ(sa, sb);
      EXPECT_EQ(ba, bb);
      ++groups_checked;
    }
  }
  EXPECT_EQ(groups_checked, 400);
}

// NaN weights are skipped by min/max and get code 0.
TEST(MlxAffineNanTest, NanIsSkippedAndCodedZero) {
  std::vector<float> w(32, 0.0f);
  for (int j = 0; j < 32; ++j) w[j] = static_cast<float>(j % 4);
  w[5] = std::numeric_limits<float>::quiet_NaN();
  std::vector<uint8_t> a(16), b(16);
  float sa, ba, sb, bb;
  QuantizeMlxAffine_ref(MlxFloatType::kF32, 4, 32, w.data(), 1, 32, 32, a.data(), &sa, &ba);
  EXPECT_EQ(ba, 3.0f);
  EXPECT_EQ((a[2] >> 4) & 0xF, 0);
  if (MlxAffineAvx2Available()) {
    QuantizeMlxAffine_avx2(MlxFloatType::kF32, 4, 32, w.data(), 1, 32, 32, b.data(), &sb, &bb);
    EXPECT_EQ(a, b);
    EXPECT_EQ(sa, sb);
    EXPECT_EQ(ba, bb);
  }
  if (MlxAffineAvx512Available(4)) {
    QuantizeMlxAffine_avx512(MlxFloatType::kF32, 4, 32, w.data(), 1, 32, 32, b.data(), &sb, &bb);
    EXPECT_EQ(a, b);
    EXPECT_EQ(sa, sb);
    EXPECT_EQ(ba, bb);
  }
}

TEST(MlxAffineTraitsTest, PackGeometry) {
  static_assert(MlxAffineBitsTraits<2>::kCodesPerPack == 16);
  static_assert(MlxAffineBitsTraits<3>::kBytesPerPack == 3);
  static_assert(MlxAffineBitsTraits<5>::kBytesPerPack == 5);
  static_assert(MlxAffineBitsTraits<6>::kCodesPerPack == 4);
  static_assert(MlxAffineBitsTraits<8>::kMaxCode == 255);
  EXPECT_EQ(MlxAffinePackedWordsPerRow(4096, 4), 512);
  EXPECT_EQ(MlxAffinePackedBytesPerRow(64, 6), 48);
  EXPECT_FALSE(MlxAffineBitsSupported(7));
  EXPECT_FALSE(MlxAffineGroupSizeSupported(16));
}

}  // namespace
}  // namespace quantd::core::quant
