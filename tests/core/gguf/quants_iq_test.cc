// Lattice-grid types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S):
// every such tensor of the 27 llama-quantize runs with an importance matrix
// ($QUANTD_TESTDATA/gguf-imatrix/reference.json) is quantized from the F32
// input, row by row, with the matrix's per-column importance (the kernels
// alone, independent of the mix rules) and must have the reference's sha256;
// plus the search tables' invariants.
#include "quants_iq.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
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
