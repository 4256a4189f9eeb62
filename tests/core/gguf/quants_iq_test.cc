// Lattice-grid types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S):
// every such tensor of the 27 llama-quantize runs with an importance matrix
// ($QUANTD_TESTDATA/gguf-imatrix/reference.json) is quantized from the F32
// input, row by row, with the matrix's per-column importance (the kernels
// alone, independent of the mix rules) and must have the reference's sha256;
// plus the search tables' invariants.
#include "quants_iq.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/sha256.h"
#include "quantd/core/gguf/gguf_file.h"
#include "quantd/core/gguf/imatrix.h"
#include "quantd/core/gguf/quants.h"
#include "quants_iq_search.h"
#include "quants_iq_tables.h"

namespace quantd::core::gguf {
namespace {

const std::string kDir = std::string(QUANTD_TESTDATA) + "/gguf-imatrix";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The weighted row quantizer of a lattice type (null for other types).
using WeightedFn = void (*)(const float*, void*, int64_t, const float*);
template <class Block, void (*kFn)(const float*, Block*, int64_t, const float*)>
void Erased(const float* x, void* y, int64_t n, const float* qw) {
  kFn(x, static_cast<Block*>(y), n, qw);
}
WeightedFn WeightedFor(const std::string& type) {
  if (type == "IQ2_XXS") return &Erased<BlockIQ2_XXS, QuantizeIQ2_XXS_weighted>;
  if (type == "IQ2_XS") return &Erased<BlockIQ2_XS, QuantizeIQ2_XS_weighted>;
  if (type == "IQ2_S") return &Erased<BlockIQ2_S, QuantizeIQ2_S_weighted>;
  if (type == "IQ3_XXS") return &Erased<BlockIQ3_XXS, QuantizeIQ3_XXS_weighted>;
  if (type == "IQ3_S") return &Erased<BlockIQ3_S, QuantizeIQ3_S_weighted>;
  if (type == "IQ1_S") return &Erased<BlockIQ1_S, QuantizeIQ1_S_weighted>;
  if (type == "IQ1_M") return &Erased<BlockIQ1_M, QuantizeIQ1_M_weighted>;
  return nullptr;
}

// Each CPU level's variant (the neighbour-distance kernels) on its own.
class IqGridReferenceTest : public ::testing::TestWithParam<CpuLevel> {};

TEST_P(IqGridReferenceTest, EveryLatticeTensorOfTheImatrixRunsMatchesLlamaQuantize) {
  if (HostCpuLevel() < GetParam()) GTEST_SKIP() << "CPU lacks " << CpuLevelName(GetParam());
  ScopedCpuLevelCap cap(GetParam());
  const std::string input = ReadAll(kDir + "/imatrix-tiny-f32.gguf");
  ASSERT_FALSE(input.empty());
  auto file = GgufFile::Parse(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(input.data()), input.size()));
  ASSERT_TRUE(file.ok()) << file.status();
  const auto matrix = ReadImportanceMatrix(kDir + "/imatrix-tiny.dat");
  ASSERT_TRUE(matrix.ok()) << matrix.status();
  const auto& imatrix = matrix->entries;
  std::ifstream ref_in(kDir + "/reference.json");
  const auto ref = nlohmann::json::parse(ref_in);

  // (tensor, type) -> sha256; the same pair must hash alike in every run.
  std::map<std::pair<std::string, std::string>, std::string> want;
  for (const auto& [run, r] : ref["runs"].items()) {
    for (const auto& t : r["tensors"]) {
      const std::string type = t["type"].get<std::string>();
      if (WeightedFor(type) == nullptr) continue;
      const auto key = std::make_pair(t["name"].get<std::string>(), type);
      const std::string sha = t["sha256"].get<std::string>();
      const auto [it, fresh] = want.emplace(key, sha);
      ASSERT_EQ(it->second, sha) << run << " " << key.first;
    }
  }
  ASSERT_EQ(want.size(), 49u);
  std::map<std::string, int> matched, total;
  for (const auto& [key, sha] : want) {
    const auto& [name, type] = key;
    const GgufTensorInfo* info = file->FindTensor(name);
    ASSERT_NE(info, nullptr) << name;
    ASSERT_EQ(info->type, GgmlType::kF32) << name;
    const int64_t n_per_row = info->ne[0];
    const int64_t rows = info->Rows();
    const float* src =
        reinterpret_cast<const float*>(input.data() + file->data_offset() + info->offset);
    const auto im = imatrix.find(name);
    const float* qw = im == imatrix.end() ? nullptr : im->second.data();
    if (qw != nullptr) {
      ASSERT_EQ(static_cast<int64_t>(im->second.size()), n_per_row) << name;
    }
    const GgmlType gt = *ParseTypeName(type);
    const int64_t row_bytes = RowBytes(gt, n_per_row);
    std::vector<uint8_t> out(static_cast<size_t>(row_bytes * rows));
    const WeightedFn fn = WeightedFor(type);
    for (int64_t r = 0; r < rows; ++r) {
      fn(src + r * n_per_row, out.data() + r * row_bytes, n_per_row, qw);
    }
    Sha256 h;
    h.Update(out.data(), out.size());
    const bool ok = h.FinishHex() == sha;
    EXPECT_TRUE(ok) << type << " " << name << (qw == nullptr ? " (no imatrix entry)" : "");
    ++total[type];
    matched[type] += ok ? 1 : 0;
  }
  for (const auto& [type, n] : total) {
    std::cout << type << ": " << matched[type] << "/" << n << " tensors byte-identical\n";
  }
}

INSTANTIATE_TEST_SUITE_P(CpuLevels, IqGridReferenceTest,
                         ::testing::Values(CpuLevel::kScalar, CpuLevel::kAvx2),
                         [](const ::testing::TestParamInfo<CpuLevel>& info) {
                           std::string s(CpuLevelName(info.param));
                           s[0] = static_cast<char>(std::toupper(s[0]));
                           return s;
                         });

}  // namespace
}  // namespace quantd::core::gguf

namespace quantd::core::gguf::iq {
namespace {

// Every grid point maps to itself; every other reachable level vector maps
// to a non-empty neighbour list ordered by (squared distance, index) whose
// distances take at most the lattice's number of distinct values, the
// first being the smallest distance to any point.
TEST(LatticeTablesTest, PointsMapToThemselvesAndNeighbourListsAreOrdered) {
  struct Case {
    Lattice lattice;
    int points, dims, max_level, nwant;
  };
  for (const Case& c : {Case{Lattice::kIq2xxs, 256, 8, 2, 2}, Case{Lattice::kIq2xs, 512, 8, 2, 2},
                        Case{Lattice::kIq2s, 1024, 8, 2, 1}, Case{Lattice::kIq1s, 2048, 8, 2, 3},
                        Case{Lattice::kIq3xxs, 256, 4, 7, 2}, Case{Lattice::kIq3s, 512, 4, 7, 3}}) {
    const LatticeTables& t = LatticeTables::Get(c.lattice);
    EXPECT_EQ(&t, &LatticeTables::Get(c.lattice));  // built once
    ASSERT_EQ(t.grid_size(), c.points);
    ASSERT_EQ(t.dims(), c.dims);
    auto pack = [&](const int8_t* pos) {
      uint32_t u = 0;
      for (int i = 0; i < c.dims; ++i)
        u |= static_cast<uint32_t>((pos[i] - 1) / 2) << (t.bits() * i);
      return u;
    };
    for (int k = 0; k < c.points; ++k) ASSERT_EQ(t.Map(pack(t.Point(k))), k);
    int radix = c.max_level + 1, total = 1, off_grid = 0;
    for (int i = 0; i < c.dims; ++i) total *= radix;
    for (int v = 0; v < total; ++v) {
      int8_t pos[8];
      for (int i = 0, r = v; i < c.dims; ++i, r /= radix)
        pos[i] = static_cast<int8_t>(2 * (r % radix) + 1);
      const int m = t.Map(pack(pos));
      if (m >= 0) continue;
      ++off_grid;
      auto dist = [&](int j) {
        int d = 0;
        for (int i = 0; i < c.dims; ++i) d += (t.Point(j)[i] - pos[i]) * (t.Point(j)[i] - pos[i]);
        return d;
      };
      int nearest = 1 << 30;
      for (int j = 0; j < c.points; ++j) nearest = std::min(nearest, dist(j));
      const uint16_t* nb = t.Neighbours(m);
      ASSERT_GT(nb[0], 0);
      EXPECT_EQ(dist(nb[1]), nearest);
      int distinct = 1;
      for (int j = 2; j <= nb[0]; ++j) {
        const int a = dist(nb[j - 1]), b = dist(nb[j]);
        ASSERT_TRUE(a < b || (a == b && nb[j - 1] < nb[j]))
            << "lattice " << static_cast<int>(c.lattice);
        distinct += a < b ? 1 : 0;
      }
      EXPECT_LE(distinct, c.nwant);
    }
    EXPECT_GT(off_grid, 0);
  }
}

}  // namespace
}  // namespace quantd::core::gguf::iq

// The vector searches against the scalar references (quants_iq_search.h),
// on random and adversarial inputs: ties between neighbours, zero and
// negative weights, NaN and infinite distances, tiny and huge values.
namespace quantd::core::gguf::iq {
namespace {

// Inputs for one search of kDims values: case `c` of a fixed list.
struct SearchInput {
  float x[8], w[8], scale;
};

SearchInput MakeInput(int c, int dims, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  SearchInput in{};
  in.scale = 0.5f + u(rng);
  for (int i = 0; i < dims; ++i) {
    in.x[i] = 16.0f * u(rng);
    in.w[i] = u(rng);
  }
  switch (c % 10) {
    case 0:  // random
      break;
    case 1:  // every distance 0: the first point wins
      for (int i = 0; i < dims; ++i) in.w[i] = 0.0f;
      break;
    case 2:  // halfway between levels: equal terms, many ties
      for (int i = 0; i < dims; ++i) in.x[i] = in.scale * static_cast<float>(2 * (i % 4) + 2);
      for (int i = 0; i < dims; ++i) in.w[i] = 1.0f;
      break;
    case 3:  // some weights zero, some negative
      for (int i = 0; i < dims; i += 2) in.w[i] = i % 4 == 0 ? 0.0f : -in.w[i];
      break;
    case 4:  // a NaN value: every distance NaN, none counts
      in.x[1] = std::numeric_limits<float>::quiet_NaN();
      break;
    case 5:  // an infinite weight: inf or NaN distances
      in.w[0] = std::numeric_limits<float>::infinity();
      break;
    case 6:  // huge values: distances overflow to inf for some points
      for (int i = 0; i < dims; ++i) in.x[i] = 1e19f * u(rng);
      break;
    case 7:  // tiny values and scale: denormal terms
      in.scale = 1e-20f;
      for (int i = 0; i < dims; ++i) in.x[i] = 1e-20f * u(rng);
      break;
    case 8:  // distances just below FLT_MAX
      in.scale = 1.0f;
      for (int i = 0; i < dims; ++i) in.w[i] = 1e36f;
      break;
    default:  // x on a level exactly
      for (int i = 0; i < dims; ++i) in.x[i] = in.scale * static_cast<float>(2 * (i % 3) + 1);
      break;
  }
  return in;
}

class IqSearchAvx2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (HostCpuLevel() < CpuLevel::kAvx2) GTEST_SKIP() << "CPU lacks AVX2";
  }
};

TEST_F(IqSearchAvx2Test, NearestNeighbourMatchesTheReferenceOnEveryList) {
  struct Case {
    Lattice lattice;
    int dims, max_level;
  };
  std::mt19937 rng(11);
  for (const Case& c :
       {Case{Lattice::kIq2xxs, 8, 2}, Case{Lattice::kIq2xs, 8, 2}, Case{Lattice::kIq2s, 8, 2},
        Case{Lattice::kIq1s, 8, 2}, Case{Lattice::kIq3xxs, 4, 7}, Case{Lattice::kIq3s, 4, 7}}) {
    const LatticeTables& t = LatticeTables::Get(c.lattice);
    const NearestNeighbourFn ref = c.dims == 4 ? NearestNeighbour_ref<4> : NearestNeighbour_ref<8>;
    const NearestNeighbourFn fast = c.dims == 4 ? NearestNeighbourFor<4>(CpuLevel::kAvx2)
                                                : NearestNeighbourFor<8>(CpuLevel::kAvx2);
    int radix = c.max_level + 1, total = 1, lists = 0;
    for (int i = 0; i < c.dims; ++i) total *= radix;
    for (int v = 0; v < total; ++v) {
      uint32_t u = 0;
      for (int i = 0, r = v; i < c.dims; ++i, r /= radix)
        u |= static_cast<uint32_t>(r % radix) << (t.bits() * i);
      const int m = t.Map(u);
      if (m >= 0) continue;
      ++lists;
      const uint16_t* nb = t.Neighbours(m);
      const LatticeTables::SlotList sl = t.NeighbourSlotList(m);
      ASSERT_EQ(sl.count, nb[0]);
      ASSERT_EQ(sl.slots, t.NeighbourSlots(m));
      for (int k = 0; k < 10; ++k) {
        const SearchInput in = MakeInput(k + lists, c.dims, rng);
        const int want = ref(t.PointsAsFloat(), nb + 1, sl.slots, nb[0], in.x, in.w, in.scale);
        const int got = fast(t.PointsAsFloat(), nb + 1, sl.slots, nb[0], in.x, in.w, in.scale);
        ASSERT_EQ(got, want) << "lattice " << static_cast<int>(c.lattice) << " list " << lists
                             << " case " << (k + lists) % 10;
      }
    }
    EXPECT_GT(lists, 0);
  }
}

// The slot rows hold each neighbour's levels (offset by 4 on odd
// coordinates of the 8-coordinate lattices), and the padding repeats the
// first neighbour's; no list is empty.
TEST(LatticeTablesTest, NeighbourSlotsHoldTheNeighboursLevels) {
  for (Lattice l : {Lattice::kIq2xxs, Lattice::kIq2xs, Lattice::kIq2s, Lattice::kIq1s,
                    Lattice::kIq3xxs, Lattice::kIq3s}) {
    const LatticeTables& t = LatticeTables::Get(l);
    const int max_level = t.dims() == 8 ? 2 : 7;
    int radix = max_level + 1, total = 1;
    for (int i = 0; i < t.dims(); ++i) total *= radix;
    for (int v = 0; v < total; ++v) {
      uint32_t u = 0;
      for (int i = 0, r = v; i < t.dims(); ++i, r /= radix)
        u |= static_cast<uint32_t>(r % radix) << (t.bits() * i);
      const int m = t.Map(u);
      if (m >= 0) continue;
      const uint16_t* nb = t.Neighbours(m);
      const uint8_t* slots = t.NeighbourSlots(m);
      ASSERT_GT(nb[0], 0) << static_cast<int>(l) << " " << v;
      const int stride = (nb[0] + kNeighbourPadding - 1) / kNeighbourPadding * kNeighbourPadding;
      for (int i = 0; i < t.dims(); ++i) {
        const int offset = t.dims() == 8 ? 4 * (i % 2) : 0;
        for (int j = 0; j < stride; ++j) {
          const int want = (t.Point(nb[1 + (j < nb[0] ? j : 0)])[i] - 1) / 2 + offset;
          ASSERT_EQ(slots[i * stride + j], want) << static_cast<int>(l) << " " << v;
        }
      }
    }
  }
}

// The batched group search against SearchGroup_ref with each quantizer's
// spec, on groups shaped as the quantizers give them (|x| after the sign
// fold, weights and their square roots) plus adversarial ones.
TEST_F(IqSearchAvx2Test, BatchedGroupSearchMatchesTheReference) {
  struct Shape {
    const char* name;
    int group, dims;
    SearchSpec spec;
    float max_q;  // 2 * kMaxQ - 1
  };
  const Shape shapes[] = {
      {"IQ2_XXS", 32, 8, {-6, 6, 0.1f, 2, true, true}, 5.0f},
      {"IQ2_XS/S", 16, 8, {-9, 9, 0.1f, 2, false, false}, 5.0f},
      {"IQ3_XXS", 32, 4, {-15, 15, 0.2f, 7, false, false}, 15.0f},
      {"IQ3_S", 32, 4, {-9, 9, 0.2f, 7, true, false}, 15.0f},
  };
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (const Shape& s : shapes) {
    const LatticeTables& t =
        LatticeTables::Get(s.name[2] == '3' ? (s.name[4] == 'X' ? Lattice::kIq3xxs : Lattice::kIq3s)
                                            : (s.group == 32 ? Lattice::kIq2xxs : Lattice::kIq2xs));
    SearchGroupFn ref, fast;
    if (s.dims == 4) {
      ref = SearchGroup_ref<32, 4, 3>;
      fast = SearchGroupFor<32, 4, 3>(CpuLevel::kAvx2);
    } else if (s.group == 32) {
      ref = SearchGroup_ref<32, 8, 2>;
      fast = SearchGroupFor<32, 8, 2>(CpuLevel::kAvx2);
    } else {
      ref = SearchGroup_ref<16, 8, 2>;
      fast = SearchGroupFor<16, 8, 2>(CpuLevel::kAvx2);
    }
    ASSERT_NE(ref, fast);
    for (int trial = 0; trial < 3000; ++trial) {
      float x[32], w[32], waux[32];
      const int kind = trial % 8;
      for (int i = 0; i < s.group; ++i) {
        x[i] = std::fabs(nd(rng));
        w[i] = u(rng) * (0.5f + x[i]);
      }
      if (kind == 1) {  // a few outliers
        x[trial % s.group] *= 20.0f;
      } else if (kind == 2) {  // zero weights for some values
        for (int i = 0; i < s.group; i += 3) w[i] = 0.0f;
      } else if (kind == 3) {  // repeated values: ties in the fits
        for (int i = 0; i < s.group; ++i) x[i] = 0.25f * static_cast<float>(1 + i % 3);
      } else if (kind == 4) {  // huge values
        for (int i = 0; i < s.group; ++i) x[i] *= 1e18f;
      } else if (kind == 5) {  // tiny values
        for (int i = 0; i < s.group; ++i) x[i] *= 1e-30f;
      } else if (kind == 6) {  // an infinite weight
        w[0] = std::numeric_limits<float>::infinity();
      } else if (kind == 7) {  // all but one value zero
        for (int i = 1; i < s.group; ++i) x[i] = 0.0f;
      }
      float max = 0;
      for (int i = 0; i < s.group; ++i) {
        waux[i] = std::sqrt(w[i]);
        max = std::max(max, x[i]);
      }
      if (max == 0) continue;
      int8_t l_ref[32], l_fast[32];
      bool g_ref[8], g_fast[8];
      for (int i = 0; i < 32; ++i) l_ref[i] = l_fast[i] = static_cast<int8_t>(i % 3);
      for (int k = 0; k < 8; ++k) g_ref[k] = g_fast[k] = k % 2 == 0;
      const float scale0 = max / s.max_q;
      const float a = ref(t, s.spec, x, w, waux, scale0, s.max_q, max, l_ref, g_ref);
      const float b = fast(t, s.spec, x, w, waux, scale0, s.max_q, max, l_fast, g_fast);
      ASSERT_EQ(std::bit_cast<uint32_t>(a), std::bit_cast<uint32_t>(b))
          << s.name << " trial " << trial << ": " << a << " vs " << b;
      ASSERT_TRUE(std::equal(l_ref, l_ref + s.group, l_fast)) << s.name << " trial " << trial;
      ASSERT_TRUE(std::equal(g_ref, g_ref + s.group / s.dims, g_fast))
          << s.name << " trial " << trial;
    }
  }
}

// The whole quantizers, scalar against AVX2, on rows with the branches'
// cases: all-zero and constant groups, tiny, huge and outlier values, and
// importance with zeros.
TEST_F(IqSearchAvx2Test, QuantizersWriteTheSameBytesAtEveryCpuLevel) {
  constexpr int kCols = 1024, kRows = 8;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<float> x(kCols * kRows);
  for (auto& v : x) v = nd(rng);
  for (int j = 0; j < kCols; ++j) {
    if (j < 300) x[j] = 0.0f;                                   // zeros
    x[kCols + j] = 0.125f;                                      // constant
    x[2 * kCols + j] = 1e-18f * static_cast<float>(j % 7 - 3);  // tiny
    if (j % 41 == 0) x[3 * kCols + j] = 5.0f;                   // outliers
    x[4 * kCols + j] *= 1e15f;                                  // huge
    x[5 * kCols + j] = std::fabs(x[5 * kCols + j]);             // positive only
  }
  std::vector<float> qw(kCols);
  for (int j = 0; j < kCols; ++j) qw[j] = j % 5 == 0 ? 0.0f : 0.5f + static_cast<float>(j % 13);
  for (const char* type : {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M"}) {
    const GgmlType gt = *ParseTypeName(type);
    const int64_t row_bytes = RowBytes(gt, kCols);
    const WeightedFn fn = WeightedFor(type);
    for (const float* w : std::vector<const float*>{qw.data(), nullptr}) {
      if (w == nullptr &&
          (gt == GgmlType::kIQ2_XXS || gt == GgmlType::kIQ2_XS || gt == GgmlType::kIQ1_S)) {
        continue;  // these need an importance matrix
      }
      std::vector<uint8_t> scalar(row_bytes * kRows), avx2(row_bytes * kRows, 0xAA);
      {
        ScopedCpuLevelCap cap(CpuLevel::kScalar);
        for (int r = 0; r < kRows; ++r) fn(&x[r * kCols], &scalar[r * row_bytes], kCols, w);
      }
      for (int r = 0; r < kRows; ++r) fn(&x[r * kCols], &avx2[r * row_bytes], kCols, w);
      for (int r = 0; r < kRows; ++r) {
        EXPECT_TRUE(
            std::equal(&scalar[r * row_bytes], &scalar[(r + 1) * row_bytes], &avx2[r * row_bytes]))
            << type << " row " << r << (w == nullptr ? " without importance" : "");
      }
    }
  }
}

}  // namespace
}  // namespace quantd::core::gguf::iq
