#include "quantd/core/quant/int4_blockwise.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"

namespace quantd::core::quant {
namespace {

using ::testing::ElementsAreArray;

// --- A naive transliteration of the published MLAS algorithm (the issue's
// wording), independent of the kernel's tiling, vectorised rounding and
// packing. Per column n and block b, all math float32.
template <typename T>
struct Reference {
  std::vector<uint8_t> packed, zero_points;
  std::vector<T> scales;
};

template <typename T>
Reference<T> ReferenceQuantize(const std::vector<T>& w, int64_t K, int64_t N, bool transposed,
                               int bs, bool sym, Int4Layout layout) {
  using Tr = ElementTraits<T>;
  auto at = [&](int64_t k, int64_t n) {
    return Tr::ToFloat(transposed ? w[n * K + k] : w[k * N + n]);
  };
  const int64_t blocks = (K + bs - 1) / bs;
  Reference<T> r;
  r.scales.resize(N * blocks);
  std::vector<int> code(K * N), zps(N * blocks);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k0 = b * bs, k1 = std::min<int64_t>(K, k0 + bs);
      float mn = std::numeric_limits<float>::max(), mx = -mn;
      for (int64_t k = k0; k < k1; ++k) {
        mn = std::min(mn, at(k, n));
        mx = std::max(mx, at(k, n));
      }
      T scale;
      int zp;
      if (sym) {
        float m = std::fabs(mx) > std::fabs(mn) ? mx : mn;
        scale = Tr::FromFloat(m / -8.0f);
        zp = layout == Int4Layout::kMatMulNBits ? 8 : 0;
      } else {
        mn = std::min(mn, 0.0f);
        mx = std::max(mx, 0.0f);
        float sf = (mx - mn) / 15.0f;
        zp = sf != 0.0f ? static_cast<int>(std::clamp(std::roundf(-mn / sf), 0.0f, 15.0f)) : 0;
        scale = Tr::FromFloat(sf);
      }
      const float s = Tr::ToFloat(scale);
      const float rcp = s != 0.0f ? 1.0f / s : 0.0f;
      for (int64_t k = k0; k < k1; ++k) {
        if (layout == Int4Layout::kMatMulNBits) {
          code[k * N + n] =
              static_cast<int>(std::clamp(std::roundf(at(k, n) * rcp + zp), 0.0f, 15.0f));
        } else {
          int q = static_cast<int>(std::roundf(at(k, n) * rcp)) + zp;
          code[k * N + n] = sym ? std::clamp(q, -8, 7) : std::clamp(q, 0, 15);
        }
      }
      if (layout == Int4Layout::kMatMulNBits) {
        r.scales[n * blocks + b] = scale;
      } else {
        r.scales[b * N + n] = scale;
      }
      zps[n * blocks + b] = zp;
    }
  }
  if (layout == Int4Layout::kMatMulNBits) {
    r.packed.assign(N * blocks * (bs / 2), 0);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t k = 0; k < K; ++k) {
        const int64_t b = k / bs, j = k % bs;
        r.packed[(n * blocks + b) * (bs / 2) + j / 2] |= code[k * N + n] << ((j & 1) * 4);
      }
      if (K & 1) {
        // MLAS leaves the previous pair's high code in an odd tail when its
        // thread block (2 quantization blocks) holds row K-2.
        const int64_t tb_start = ((K - 1) / (2 * bs)) * 2 * bs;
        const int carry = K - 1 > tb_start ? code[(K - 2) * N + n] : 0;
        const int64_t b = (K - 1) / bs, j = (K - 1) % bs;
        r.packed[(n * blocks + b) * (bs / 2) + j / 2] |= carry << 4;
      }
    }
    if (!sym) {
      const int64_t per = (blocks + 1) / 2;
      r.zero_points.assign(N * per, 0);
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t b = 0; b < per * 2; ++b) {
          int z = b < blocks ? zps[n * blocks + b] : 8;
          r.zero_points[n * per + b / 2] |= z << ((b & 1) * 4);
        }
      }
    }
  } else {
    r.packed.assign((K * N + 1) / 2, 0);
    for (int64_t f = 0; f < K * N; ++f) r.packed[f / 2] |= (code[f] & 0xf) << ((f & 1) * 4);
    if (!sym) {
      r.zero_points.assign((blocks * N + 1) / 2, 0);
      for (int64_t b = 0; b < blocks; ++b) {
        for (int64_t n = 0; n < N; ++n) {
          int64_t f = b * N + n;
          r.zero_points[f / 2] |= zps[n * blocks + b] << ((f & 1) * 4);
        }
      }
    }
  }
  return r;
}

template <typename T>
struct Output {
  std::vector<uint8_t> packed, zero_points;
  std::vector<T> scales;
};

template <typename T>
Output<T> QuantizeAll(const std::vector<T>& w, int64_t K, int64_t N, bool transposed, Int4Options o,
              int64_t split = -1) {
  Int4Sizes s = ComputeInt4Sizes(K, N, o);
  Output<T> out;
  out.packed.assign(s.packed_bytes, 0);
  out.scales.resize(s.scale_count);
  out.zero_points.assign(s.zero_point_bytes, 0);
  WeightView<T> v{w.data(), K, N, transposed ? 1 : N, transposed ? K : 1};
  uint8_t* zp = o.symmetric ? nullptr : out.zero_points.data();
  if (split > 0 && split < N) {  // two disjoint column ranges, as two threads would
    QuantizeInt4(v, o, 0, split, out.packed.data(), out.scales.data(), zp);
    QuantizeInt4(v, o, split, N, out.packed.data(), out.scales.data(), zp);
  } else {
    QuantizeInt4(v, o, 0, N, out.packed.data(), out.scales.data(), zp);
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
                          0, 0, 0, 0, 0, 0, 0, 0};
  auto out = QuantizeAll(w, 16, 1, false, Nbits(16, true));
  EXPECT_THAT(out.scales, ElementsAreArray({0.5f}));
  // codes: 6 9 12 0 8 9(8.5 away from zero) 8(7.5 -> 8) 12(11.5 -> 12) 8 ...
  EXPECT_THAT(out.packed, ElementsAreArray<uint8_t>({0x96, 0x0c, 0x98, 0xc8, 0x88, 0x88, 0x88,
                                                     0x88}));
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
  EXPECT_THAT(out.packed, ElementsAreArray<uint8_t>({0x0c, 0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                     0, 0, 0, 0}));
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

using Shape = std::tuple<int /*bs*/, int64_t /*K*/, int64_t /*N*/>;
class Int4MatchesReferenceTest
    : public ::testing::TestWithParam<std::tuple<Shape, bool /*sym*/, Int4Layout, bool /*t*/>> {};

TEST_P(Int4MatchesReferenceTest, FloatAndFp16BitExact) {
  auto [shape, sym, layout, transposed] = GetParam();
  auto [bs, K, N] = shape;
  Int4Options o = Nbits(bs, sym);
  o.layout = layout;
  std::vector<float> w = HeavyTailed(K * N, static_cast<uint32_t>(bs * 131 + K * 7 + N));
  // A block of zeros and a block whose extreme is positive, in column 0.
  for (int64_t k = 0; k < std::min<int64_t>(K, bs); ++k) w[transposed ? k : k * N] = 0.0f;
  auto ref = ReferenceQuantize(w, K, N, transposed, bs, sym, layout);
  const int64_t split = layout == Int4Layout::kQdq ? (N / 2) & ~int64_t{1} : N / 2;
  auto got = QuantizeAll(w, K, N, transposed, o, split);
  SCOPED_TRACE(::testing::Message() << "bs=" << bs << " K=" << K << " N=" << N << " sym=" << sym
                                    << " qdq=" << (layout == Int4Layout::kQdq)
                                    << " transposed=" << transposed);
  EXPECT_THAT(got.packed, ElementsAreArray(ref.packed));
  EXPECT_THAT(ScaleBits(got.scales), ElementsAreArray(ScaleBits(ref.scales)));
  EXPECT_THAT(got.zero_points, ElementsAreArray(ref.zero_points));

  std::vector<Half> h(w.size());
  for (size_t i = 0; i < w.size(); ++i) h[i] = Half{FloatToHalf(w[i])};
  auto href = ReferenceQuantize(h, K, N, transposed, bs, sym, layout);
  auto hgot = QuantizeAll(h, K, N, transposed, o, split);
  EXPECT_THAT(hgot.packed, ElementsAreArray(href.packed));
  EXPECT_THAT(ScaleBits(hgot.scales), ElementsAreArray(ScaleBits(href.scales)));
  EXPECT_THAT(hgot.zero_points, ElementsAreArray(href.zero_points));
}

std::vector<Shape> Shapes() {
  std::vector<Shape> s;
  for (int bs : {16, 32, 64, 128, 256}) {
    for (int64_t k : {int64_t{1}, int64_t{3}, int64_t{bs - 1}, int64_t{bs}, int64_t{bs + 1},
                      int64_t{2 * bs + 7}, int64_t{3 * bs}}) {
      s.emplace_back(bs, k, 5);
    }
    s.emplace_back(bs, 2 * bs + 5, 70);
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(Grid, Int4MatchesReferenceTest,
                         ::testing::Combine(::testing::ValuesIn(Shapes()), ::testing::Bool(),
                                            ::testing::Values(Int4Layout::kMatMulNBits,
                                                              Int4Layout::kQdq),
                                            ::testing::Bool()));

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
