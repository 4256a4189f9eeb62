#include "quantd/core/quant/int4_blockwise.h"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "quantd/core/base/cpu_features.h"
#include "quantd/core/quant/nibble_pack.h"

namespace quantd::core::quant {
namespace {

using ::testing::ElementsAreArray;

template <typename T>
struct Output {
  std::vector<uint8_t> packed, zero_points;
  std::vector<ScaleOf<T>> scales;
};

// Which implementation QuantizeAll runs.
enum class Impl { kDispatched, kReference };

// Quantizes all of w[K, N] (row-major, or [N, K] when transposed) into fresh
// zero-filled buffers. `split` > 0 quantizes [0, split) and [split, N) in two
// calls, as two threads would.
template <typename T>
Output<T> QuantizeAll(const std::vector<T>& w, int64_t K, int64_t N, bool transposed, Int4Options o,
                      int64_t split = -1, Impl impl = Impl::kDispatched) {
  Int4Sizes s = ComputeInt4Sizes(K, N, o);
  Output<T> out;
  out.packed.assign(s.packed_bytes, 0);
  out.scales.resize(s.scale_count);
  out.zero_points.assign(s.zero_point_bytes, 0);
  WeightView<T> v{w.data(), K, N, transposed ? 1 : N, transposed ? K : 1};
  uint8_t* zp = o.symmetric ? nullptr : out.zero_points.data();
  auto run = [&](int64_t n0, int64_t n1) {
    if (impl == Impl::kReference) {
      QuantizeInt4_ref(v, o, n0, n1, out.packed.data(), out.scales.data(), zp);
    } else {
      QuantizeInt4(v, o, n0, n1, out.packed.data(), out.scales.data(), zp);
    }
  };
  if (split > 0 && split < N) {
    run(0, split);
    run(split, N);
  } else {
    run(0, N);
  }
  return out;
}

std::vector<uint32_t> ScaleBits(const std::vector<float>& v) {
  std::vector<uint32_t> out;
  for (float f : v) out.push_back(std::bit_cast<uint32_t>(f));
  return out;
}
std::vector<uint32_t> ScaleBits(const std::vector<Half>& v) {
  std::vector<uint32_t> out;
  for (Half h : v) out.push_back(h.bits);
  return out;
}

Int4Options Nbits(int bs, bool sym) {
  Int4Options o;
  o.block_size = bs;
  o.symmetric = sym;
  return o;
}

// --------------------------------------------------- hand-computed vectors --

TEST(Int4HandVectorsTest, SymmetricBlockOfSixteen) {
  // Largest magnitude -4 -> scale = -4 / -8 = 0.5, r = 2, q = roundf(2w + 8).
  std::vector<float> w = {-1.0f, 0.5f, 2.0f, -4.0f, 0.0f, 0.25f, -0.25f, 1.75f,
                          0,     0,    0,    0,     0,    0,     0,      0};
  auto out = QuantizeAll(w, 16, 1, false, Nbits(16, true));
  EXPECT_THAT(out.scales, ElementsAreArray({0.5f}));
  // codes: 6 9 12 0 8 9(8.5 away from zero) 8(7.5 -> 8) 12(11.5 -> 12) 8 ...
  EXPECT_THAT(out.packed,
              ElementsAreArray<uint8_t>({0x96, 0x0c, 0x98, 0xc8, 0x88, 0x88, 0x88, 0x88}));
}

TEST(Int4HandVectorsTest, NegativeScaleWhenLargestMagnitudeIsPositive) {
  // m = 3 -> scale = 3 / -8 = -0.375; r = -2.6666667.
  // q(3) = roundf(-8 + 8) = 0, q(-1) = roundf(10.666667) = 11, q(0) = 8.
  std::vector<float> w(16, 0.0f);
  w[0] = 3.0f;
  w[1] = -1.0f;
  auto out = QuantizeAll(w, 16, 1, false, Nbits(16, true));
  EXPECT_EQ(out.scales[0], -0.375f);
  EXPECT_EQ(out.packed[0], 0xb0);
  EXPECT_EQ(out.packed[1], 0x88);
}

TEST(Int4HandVectorsTest, TieOfMagnitudesPicksTheMinimum) {
  // |2| == |-2|: m = min = -2 -> scale +0.25; q(2) = 16 -> clamped 15, q(-2) = 0.
  std::vector<float> w(16, 0.0f);
  w[0] = 2.0f;
  w[1] = -2.0f;
  auto out = QuantizeAll(w, 16, 1, false, Nbits(16, true));
  EXPECT_EQ(out.scales[0], 0.25f);
  EXPECT_EQ(out.packed[0], 0x0f);
}

TEST(Int4HandVectorsTest, AllZeroBlocks) {
  std::vector<float> w(32, 0.0f);
  auto sym = QuantizeAll(w, 32, 1, false, Nbits(32, true));
  // -0 / 8 keeps the sign: MLAS stores -0.0; codes are the zero point 8.
  EXPECT_EQ(std::bit_cast<uint32_t>(sym.scales[0]), 0x80000000u);
  EXPECT_THAT(sym.packed, ::testing::Each(0x88));
  auto asym = QuantizeAll(w, 32, 1, false, Nbits(32, false));
  EXPECT_EQ(std::bit_cast<uint32_t>(asym.scales[0]), 0u);
  EXPECT_THAT(asym.packed, ::testing::Each(0x00));
  EXPECT_THAT(asym.zero_points, ElementsAreArray<uint8_t>({0x80}));  // zp 0, unused nibble 8
}

TEST(Int4HandVectorsTest, AsymmetricBlock) {
  // Range [-1.5, 6] -> scale 7.5 / 15 = 0.5, zp = roundf(1.5 / 0.5) = 3.
  // q = roundf(2w + 3): -1.5 -> 0, 6 -> 15, 0 -> 3, 1.25 -> 5.5 -> 6.
  std::vector<float> w(16, 0.0f);
  w[0] = -1.5f;
  w[1] = 6.0f;
  w[2] = 0.0f;
  w[3] = 1.25f;
  auto out = QuantizeAll(w, 16, 1, false, Nbits(16, false));
  EXPECT_EQ(out.scales[0], 0.5f);
  EXPECT_THAT(out.zero_points, ElementsAreArray<uint8_t>({0x83}));
  EXPECT_EQ(out.packed[0], 0xf0);
  EXPECT_EQ(out.packed[1], 0x63);
  EXPECT_EQ(out.packed[2], 0x33);
}

TEST(Int4HandVectorsTest, KNotAMultipleOfTheBlock) {
  // K = 20, bs = 16: block 1 holds rows 16..19; bytes for rows >= K are 0.
  std::vector<float> w(20, 0.0f);
  w[16] = -8.0f;  // block 1: scale 1, code 0
  w[17] = 1.0f;   // code 9
  w[18] = 7.0f;   // code 15
  w[19] = -1.0f;  // code 7
  auto out = QuantizeAll(w, 20, 1, false, Nbits(16, true));
  ASSERT_EQ(out.packed.size(), 16u);
  EXPECT_EQ(out.scales[1], 1.0f);
  EXPECT_THAT(std::vector<uint8_t>(out.packed.begin() + 8, out.packed.end()),
              ElementsAreArray<uint8_t>({0x90, 0x7f, 0, 0, 0, 0, 0, 0}));
}

TEST(Int4HandVectorsTest, KSmallerThanOneBlock) {
  // K = 4 < bs = 32: one block, 16 bytes, 2 used.
  std::vector<float> w = {1.0f, -2.0f, 0.5f, 0.0f};
  auto out = QuantizeAll(w, 4, 1, false, Nbits(32, true));
  ASSERT_EQ(out.packed.size(), 16u);
  EXPECT_EQ(out.scales[0], 0.25f);  // m = -2
  // q = roundf(4w + 8): 12, 0, 10, 8
  EXPECT_THAT(out.packed,
              ElementsAreArray<uint8_t>({0x0c, 0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(Int4HandVectorsTest, OddKCarriesMlasScratchIntoTheLastHighNibble) {
  // K = 3: the last byte pairs row 2 with the code MLAS computed for row 1.
  std::vector<float> w = {0.0f, 4.0f, -8.0f};  // m = -8, scale 1: codes 8, 12, 0
  auto out = QuantizeAll(w, 3, 1, false, Nbits(16, true));
  EXPECT_EQ(out.packed[0], 0xc8);
  EXPECT_EQ(out.packed[1], 0xc0);  // low: row 2 (0), high: row 1's code (12)
  // K = 17, bs = 16: row 16 starts block 1, which shares the MLAS thread block
  // with block 0, so the carry is row 15's code.
  std::vector<float> w17(17, 0.0f);
  w17[14] = -1.0f;  // block 0: m = -1, scale 0.125, r = 8: code(-1) = 0
  w17[15] = 0.5f;   // code 12
  w17[16] = 2.0f;   // block 1: m = 2, scale -0.25: code 0
  auto o17 = QuantizeAll(w17, 17, 1, false, Nbits(16, true));
  EXPECT_EQ(o17.packed[7], 0xc0);
  EXPECT_EQ(o17.packed[8], 0xc0);  // low: row 16 (0), high: row 15's code (12)
  // K = 33, bs = 16: row 32 opens a new thread block: the high nibble is 0
  // although row 31's code is 8.
  std::vector<float> w33(33, 0.0f);
  w33[30] = -1.0f;  // block 1: scale 0.125, zeros -> code 8
  w33[32] = 1.0f;   // block 2: scale -0.125, code 0
  auto o33 = QuantizeAll(w33, 33, 1, false, Nbits(16, true));
  EXPECT_EQ(o33.packed[15], 0x80);
  EXPECT_EQ(o33.packed[16], 0x00);
}

TEST(Int4HandVectorsTest, Fp16WeightsGetFp16ScalesAndQuantizeWithTheRoundedScale) {
  // Asymmetric, values in [0, 1]: scale = fp16(1/15) = 0.06665039 (not 1/15),
  // r = 15.003663. w = fp16(0.4999) = 0.49993896: 7.5009 -> 8 (7.499 -> 7
  // with the unrounded scale).
  std::vector<Half> w(16, Half{FloatToHalf(0.0f)});
  w[0] = Half{FloatToHalf(1.0f)};
  w[1] = Half{FloatToHalf(0.4999f)};
  auto out = QuantizeAll(w, 16, 1, false, Nbits(16, false));
  EXPECT_EQ(out.scales[0].bits, FloatToHalf(1.0f / 15.0f));
  EXPECT_EQ(out.packed[0], 0x8f);
  EXPECT_THAT(out.zero_points, ElementsAreArray<uint8_t>({0x80}));
}

TEST(Int4HandVectorsTest, QdqSymmetricUsesSignedCodesAndRoundsBeforeTheZeroPoint) {
  // QDQ int4: q = clamp(roundf(w * r), -8, 7); scale as MatMulNBits.
  std::vector<float> w = {-4.0f, 1.0f, 3.9f, -0.25f};  // K=4, N=1, scale 0.5, r 2
  Int4Options o = Nbits(16, true);
  o.layout = Int4Layout::kQdq;
  auto out = QuantizeAll(w, 4, 1, false, o);
  EXPECT_EQ(out.scales[0], 0.5f);
  // codes -8, 2, 8 -> 7, -0.5 -> -1 (away from zero): nibbles 8, 2, 7, f
  EXPECT_THAT(out.packed, ElementsAreArray<uint8_t>({0x28, 0xf7}));
}

// ------------------------------------------- OpenVINO's published layout --

TEST(Int4PublishedLayoutTest, OpenVinoMatMulNBits3x4Reproduced) {
  const std::string path = std::string(QUANTD_TESTDATA) +
                           "/onnx/openvino-matmulnbits-3x4/matmulnbits_3x4.as-published.onnx";
  std::ifstream f(path, std::ios::binary);
  ASSERT_TRUE(f) << path;
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromIstream(&f));
  const onnx::TensorProto *q = nullptr, *s = nullptr;
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == "b_Q4") q = &t;
    if (t.name() == "b_scales") s = &t;
  }
  ASSERT_NE(q, nullptr);
  ASSERT_NE(s, nullptr);
  const auto& node = m.graph().node(0);
  int64_t K = 0, N = 0, bs = 0;
  for (const auto& a : node.attribute()) {
    if (a.name() == "K") K = a.i();
    if (a.name() == "N") N = a.i();
    if (a.name() == "block_size") bs = a.i();
  }
  ASSERT_EQ(K, 4);
  ASSERT_EQ(N, 3);
  ASSERT_EQ(bs, 16);
  std::vector<uint8_t> packed(q->raw_data().begin(), q->raw_data().end());
  std::vector<float> scales(N);
  std::memcpy(scales.data(), s->raw_data().data(), N * 4);
  // Decode B[k][n] = (q - 8) * scale, then quantize it again.
  std::vector<float> w(K * N);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      int code = (packed[n * (bs / 2) + k / 2] >> ((k & 1) * 4)) & 0xf;
      w[k * N + n] = static_cast<float>(code - 8) * scales[n];
    }
  }
  auto out = QuantizeAll(w, K, N, false, Nbits(static_cast<int>(bs), true));
  EXPECT_THAT(out.packed, ElementsAreArray(packed));
  EXPECT_THAT(ScaleBits(out.scales), ElementsAreArray(ScaleBits(scales)));
}

// ------------------------------------------ kernel vs reference, all shapes --

std::vector<float> HeavyTailed(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 0.02f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) {
    x = g(rng);
    if (u(rng) < 0.01f) x *= 20.0f;  // outliers
    if (u(rng) < 0.02f) x = 0.0f;
  }
  return v;
}

// Every variant of the kernels (each CPU level this machine has) against
// the library's scalar reference, byte for byte: RTN and search, FP32,
// FP16 and BF16, both layouts, both symmetries, row-major and transposed storage, on
// ragged shapes (K and N not multiples of the block or the 64-column tile).
struct Int4Shape {
  int bs;
  int64_t k, n;
};

void PrintTo(const Int4Shape& s, std::ostream* os) {
  *os << "bs=" << s.bs << " K=" << s.k << " N=" << s.n;
}

std::vector<Int4Shape> Int4Shapes() {
  std::vector<Int4Shape> s;
  for (int bs : {16, 32, 64, 128, 256}) {
    for (int64_t k : {int64_t{1}, int64_t{3}, int64_t{bs - 1}, int64_t{bs}, int64_t{bs + 1},
                      int64_t{2 * bs + 7}, int64_t{3 * bs}}) {
      s.push_back({bs, k, 5});
    }
    s.push_back({bs, 2 * bs + 5, 70});   // one full tile after the split + a ragged one
    s.push_back({bs, 2 * bs + 1, 133});  // full tiles on both sides of the split, odd N
    s.push_back({bs, 3 * bs, 192});      // only full tiles and full blocks
  }
  return s;
}

class Int4VariantTest : public ::testing::TestWithParam<std::tuple<CpuLevel, Int4Shape>> {};

template <typename T>
void ExpectVariantMatchesReference(const std::vector<T>& w, const Int4Shape& shape, bool transposed,
                                   const Int4Options& o) {
  const int64_t K = shape.k, N = shape.n;
  // Two column ranges as two threads would quantize them; QDQ ranges start at
  // even columns and odd N allows only one range.
  int64_t split = N > 64 ? 64 : N / 2;
  if (o.layout == Int4Layout::kQdq) {
    // Stored by row, odd N makes neighbouring columns share bytes; stored
    // n-major (a column's codes contiguous) an even first column suffices.
    split = (N & 1) && !o.n_major ? -1 : (split & ~int64_t{1});
  }
  auto ref = QuantizeAll(w, K, N, transposed, o, -1, Impl::kReference);
  auto got = QuantizeAll(w, K, N, transposed, o, split);
  EXPECT_THAT(got.packed, ElementsAreArray(ref.packed));
  EXPECT_THAT(ScaleBits(got.scales), ElementsAreArray(ScaleBits(ref.scales)));
  EXPECT_THAT(got.zero_points, ElementsAreArray(ref.zero_points));
}

TEST_P(Int4VariantTest, WritesReferenceBytes) {
  const auto [level, shape] = GetParam();
  if (HostCpuLevel() < level) GTEST_SKIP() << "CPU lacks " << CpuLevelName(level);
  ScopedCpuLevelCap cap(level);
  ASSERT_EQ(ActiveCpuLevel(), level);
  const auto [bs, K, N] = shape;
  for (bool transposed : {false, true}) {
    std::vector<float> w = HeavyTailed(K * N, static_cast<uint32_t>(bs * 131 + K * 7 + N));
    // A block of zeros and a block whose extreme is positive, in column 0;
    // blocks of signed zeros in columns 1 (-0 first) and 2 (+0 first): the
    // first zero of a block is its extreme, whose sign the scale keeps.
    for (int64_t k = 0; k < std::min<int64_t>(K, bs); ++k) {
      auto at = [&](int64_t col) -> float& { return w[transposed ? col * K + k : k * N + col]; };
      at(0) = 0.0f;
      at(1) = (k & 1) == 0 ? -0.0f : 0.0f;
      at(2) = (k & 1) == 0 ? 0.0f : -0.0f;
    }
    std::vector<Half> h(w.size());
    for (size_t i = 0; i < w.size(); ++i) h[i] = Half{FloatToHalf(w[i])};
    // BF16: the upper half of each float (a BF16 source has float scales).
    std::vector<Bfloat16> b(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      b[i] = Bfloat16{static_cast<uint16_t>(std::bit_cast<uint32_t>(w[i]) >> 16)};
    }
    for (bool sym : {true, false}) {
      for (int form = 0; form < 3; ++form) {  // MatMulNBits, QDQ, QDQ n-major
        for (Int4Algorithm algorithm : {Int4Algorithm::kRtn, Int4Algorithm::kSearch}) {
          Int4Options o = Nbits(bs, sym);
          o.layout = form == 0 ? Int4Layout::kMatMulNBits : Int4Layout::kQdq;
          o.n_major = form == 2;
          o.algorithm = algorithm;
          SCOPED_TRACE(::testing::Message()
                       << CpuLevelName(level) << " bs=" << bs << " K=" << K << " N=" << N
                       << " sym=" << sym << " qdq=" << (form > 0) << " n_major=" << o.n_major
                       << " search=" << (algorithm == Int4Algorithm::kSearch)
                       << " transposed=" << transposed);
          {
            SCOPED_TRACE("fp32");
            ExpectVariantMatchesReference(w, shape, transposed, o);
          }
          {
            SCOPED_TRACE("fp16");
            ExpectVariantMatchesReference(h, shape, transposed, o);
          }
          {
            SCOPED_TRACE("bf16");
            ExpectVariantMatchesReference(b, shape, transposed, o);
          }
        }
      }
    }
  }
}

std::string Int4VariantName(const ::testing::TestParamInfo<std::tuple<CpuLevel, Int4Shape>>& info) {
  const CpuLevel level = std::get<0>(info.param);
  const Int4Shape& shape = std::get<1>(info.param);
  std::string name(CpuLevelName(level));
  name[0] = static_cast<char>(std::toupper(name[0]));
  return name + "Bs" + std::to_string(shape.bs) + "K" + std::to_string(shape.k) + "N" +
         std::to_string(shape.n);
}

INSTANTIATE_TEST_SUITE_P(LevelsAndShapes, Int4VariantTest,
                         ::testing::Combine(::testing::ValuesIn(kAllCpuLevels),
                                            ::testing::ValuesIn(Int4Shapes())),
                         Int4VariantName);

// QDQ stored n-major holds the codes, scales and zero points of the usual
// QDQ layout, transposed ([N, K] and [N, blocks]), for both storages of W
// and both symmetries; DequantizeInt4 reads either layout to the same values.
TEST(Int4NMajorTest, IsTheTransposeOfTheQdqLayout) {
  for (const Int4Shape& shape :
       {Int4Shape{32, 96, 70}, Int4Shape{16, 37, 5}, Int4Shape{64, 64, 9}}) {
    const auto [bs, K, N] = shape;
    const std::vector<float> w = HeavyTailed(K * N, static_cast<uint32_t>(K + N));
    for (bool transposed : {false, true}) {
      for (bool sym : {true, false}) {
        SCOPED_TRACE(::testing::Message() << "bs=" << bs << " K=" << K << " N=" << N
                                          << " transposed=" << transposed << " sym=" << sym);
        Int4Options qdq = Nbits(bs, sym);
        qdq.layout = Int4Layout::kQdq;
        Int4Options major = qdq;
        major.n_major = true;
        const auto rows = QuantizeAll(w, K, N, transposed, qdq);
        const auto cols = QuantizeAll(w, K, N, transposed, major, N > 64 ? 64 : -1);
        const int64_t blocks = (K + bs - 1) / bs;
        std::vector<uint8_t> codes(rows.packed.size());
        TransposeNibbles(rows.packed.data(), K, N, codes.data());
        EXPECT_THAT(cols.packed, ElementsAreArray(codes));
        std::vector<float> scales(rows.scales.size());
        for (int64_t b = 0; b < blocks; ++b) {
          for (int64_t n = 0; n < N; ++n) scales[n * blocks + b] = rows.scales[b * N + n];
        }
        EXPECT_THAT(ScaleBits(cols.scales), ElementsAreArray(ScaleBits(scales)));
        if (!sym) {
          std::vector<uint8_t> zps(rows.zero_points.size());
          TransposeNibbles(rows.zero_points.data(), blocks, N, zps.data());
          EXPECT_THAT(cols.zero_points, ElementsAreArray(zps));
        }
        std::vector<float> a(K * N), b(K * N);
        DequantizeInt4(K, N, qdq, rows.packed.data(), rows.scales.data(),
                       sym ? nullptr : rows.zero_points.data(), 0, N, a.data());
        DequantizeInt4(K, N, major, cols.packed.data(), cols.scales.data(),
                       sym ? nullptr : cols.zero_points.data(), 0, N, b.data());
        EXPECT_EQ(a, b);
      }
    }
  }
}

// ------------------------------------------------------------- dequantize --

// Rounding costs at most half a step; the clamp of the short side (code 16 ->
// 15 when the extreme is negative) or a rounded zero point at most one step.
TEST(Int4DequantizeTest, RoundTripErrorBoundedByOneScale) {
  const int64_t K = 100, N = 7;
  std::vector<float> w = HeavyTailed(K * N, 5);
  for (bool sym : {true, false}) {
    for (Int4Layout layout : {Int4Layout::kMatMulNBits, Int4Layout::kQdq}) {
      Int4Options o = Nbits(32, sym);
      o.layout = layout;
      auto q = QuantizeAll(w, K, N, false, o);
      std::vector<float> d(K * N);
      DequantizeInt4(K, N, o, q.packed.data(), q.scales.data(),
                     sym ? nullptr : q.zero_points.data(), 0, N, d.data());
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t k = 0; k < K; ++k) {
          int64_t b = k / 32;
          float s = layout == Int4Layout::kMatMulNBits ? q.scales[n * 4 + b] : q.scales[b * N + n];
          EXPECT_LE(std::fabs(d[n * K + k] - w[k * N + n]), std::fabs(s) * 1.0001f + 1e-7f)
              << "k=" << k << " n=" << n;
        }
      }
    }
  }
}

// ----------------------------------------------------------------- search --

TEST(Int4SearchTest, NeverWorseThanRtnOnAnyBlock) {
  const int64_t K = 256, N = 64;
  std::vector<float> w = HeavyTailed(K * N, 77);
  for (bool sym : {true, false}) {
    for (Int4Layout layout : {Int4Layout::kMatMulNBits, Int4Layout::kQdq}) {
      for (int bs : {16, 32, 128}) {
        Int4Options rtn = Nbits(bs, sym);
        rtn.layout = layout;
        Int4Options search = rtn;
        search.algorithm = Int4Algorithm::kSearch;
        auto a = QuantizeAll(w, K, N, false, rtn);
        auto b = QuantizeAll(w, K, N, false, search);
        std::vector<float> da(K * N), db(K * N);
        DequantizeInt4(K, N, rtn, a.packed.data(), a.scales.data(),
                       sym ? nullptr : a.zero_points.data(), 0, N, da.data());
        DequantizeInt4(K, N, search, b.packed.data(), b.scales.data(),
                       sym ? nullptr : b.zero_points.data(), 0, N, db.data());
        double total_a = 0, total_b = 0;
        for (int64_t n = 0; n < N; ++n) {
          for (int64_t k0 = 0; k0 < K; k0 += bs) {
            double ea = 0, eb = 0;
            for (int64_t k = k0; k < k0 + bs; ++k) {
              double x = w[k * N + n];
              ea += (x - da[n * K + k]) * (x - da[n * K + k]);
              eb += (x - db[n * K + k]) * (x - db[n * K + k]);
            }
            ASSERT_LE(eb, ea) << "block n=" << n << " k0=" << k0 << " bs=" << bs;
            total_a += ea;
            total_b += eb;
          }
        }
        EXPECT_LT(total_b, total_a) << "search should improve something";
      }
    }
  }
}

}  // namespace
}  // namespace quantd::core::quant
