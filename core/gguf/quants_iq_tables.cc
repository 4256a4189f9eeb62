// Builds the lattice search tables (see quants_iq_tables.h).
#include "quants_iq_tables.h"

#include <array>
#include <climits>
#include <cstddef>

#include "quants_iq.h"
#include "quants_iq_grids.h"

namespace quantd::core::gguf::iq {
namespace {

struct LatticeSpec {
  const uint16_t* grid;
  int grid_size;
  int dims;
  int bits;
  int max_level;  // highest level a quantizer puts in a packed vector
  int nwant;      // distinct distances kept in a neighbour list
};

LatticeSpec SpecOf(Lattice lattice) {
  switch (lattice) {
    case Lattice::kIq2xxs:
      return {kIq2xxsGrid, 256, 8, 2, 2, 2};
    case Lattice::kIq2xs:
      return {kIq2xsGrid, 512, 8, 2, 2, 2};
    case Lattice::kIq2s:
      return {kIq2sGrid, 1024, 8, 2, 2, 1};
    case Lattice::kIq1s:
      return {kIq1sGrid, 2048, 8, 2, 2, 3};
    case Lattice::kIq3xxs:
      return {kIq3xxsGrid, 256, 4, 3, 7, 2};
    case Lattice::kIq3s:
      return {kIq3sGrid, 512, 4, 3, 7, 3};
  }
  return {kIq2xxsGrid, 256, 8, 2, 2, 2};
}

}  // namespace

LatticeTables::LatticeTables(Lattice lattice) {
  const LatticeSpec s = SpecOf(lattice);
  dims_ = s.dims;
  bits_ = s.bits;
  grid_size_ = s.grid_size;
  const uint32_t level_mask = (1u << s.bits) - 1;
  points_.resize(static_cast<size_t>(s.grid_size) * s.dims);
  for (int k = 0; k < s.grid_size; ++k) {
    for (int i = 0; i < s.dims; ++i) {
      const int l = static_cast<int>((s.grid[k] >> (s.bits * i)) & level_mask);
      points_[static_cast<size_t>(k) * s.dims + i] = static_cast<int8_t>(2 * l + 1);
    }
  }
  float_points_.assign(points_.begin(), points_.end());
  const size_t map_size = size_t{1} << (s.bits * s.dims);
  map_.assign(map_size, INT_MIN);
  for (int k = 0; k < s.grid_size; ++k) map_[s.grid[k]] = k;

  // Every vector with levels 0..max_level that is not a grid point gets the
  // points at its nwant smallest distinct squared distances. Distances are
  // small integers, so a histogram replaces llama.cpp's sort by (d2, index):
  // points are emitted per distance in index order, which is that order.
  constexpr int kMaxD2 = 8 * 14 * 14;
  std::vector<int> d2(s.grid_size);
  std::array<int, kMaxD2 + 1> count{};
  std::array<int, 4> levels{};
  const int radix = s.max_level + 1;
  int total = 1;
  for (int i = 0; i < s.dims; ++i) total *= radix;
  for (int v = 0; v < total; ++v) {
    uint32_t packed = 0;
    int8_t pos[8];
    for (int i = 0, rest = v; i < s.dims; ++i, rest /= radix) {
      const int l = rest % radix;
      packed |= static_cast<uint32_t>(l) << (s.bits * i);
      pos[i] = static_cast<int8_t>(2 * l + 1);
    }
    if (map_[packed] >= 0) continue;
    count.fill(0);
    for (int j = 0; j < s.grid_size; ++j) {
      const int8_t* pg = &points_[static_cast<size_t>(j) * s.dims];
      int d = 0;
      for (int i = 0; i < s.dims; ++i) d += (pg[i] - pos[i]) * (pg[i] - pos[i]);
      d2[j] = d;
      ++count[d];
    }
    int nlev = 0;
    for (int d = 0; d <= kMaxD2 && nlev < s.nwant; ++d) {
      if (count[d] > 0) levels[nlev++] = d;
    }
    const size_t start = neighbours_.size();
    map_[packed] = -static_cast<int32_t>(lists_.size() + 1);
    neighbours_.push_back(0);
    for (int li = 0; li < nlev; ++li) {
      for (int j = 0; j < s.grid_size; ++j) {
        if (d2[j] == levels[li]) neighbours_.push_back(static_cast<uint16_t>(j));
      }
    }
    neighbours_[start] = static_cast<uint16_t>(neighbours_.size() - start - 1);
    const int n = static_cast<int>(neighbours_.size() - start - 1);
    const int stride = (n + kNeighbourPadding - 1) / kNeighbourPadding * kNeighbourPadding;
    lists_.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(slots_.size()),
                      static_cast<uint32_t>(n)});
    for (int i = 0; i < s.dims; ++i) {
      const int offset = s.dims == 8 ? 4 * (i % 2) : 0;
      for (int j = 0; j < stride; ++j) {
        // Padding repeats the first neighbour (see NeighbourSlots).
        const int jj = j < n ? j : 0;
        const int level = n > 0 ? (Point(neighbours_[start + 1 + jj])[i] - 1) / 2 : -offset;
        slots_.push_back(static_cast<uint8_t>(level + offset));
      }
    }
  }
}

const LatticeTables& LatticeTables::Get(Lattice lattice) {
  // One immutable object per lattice, built on first use.
  switch (lattice) {
    case Lattice::kIq2xxs: {
      static const LatticeTables* const t = new LatticeTables(Lattice::kIq2xxs);
      return *t;
    }
    case Lattice::kIq2xs: {
      static const LatticeTables* const t = new LatticeTables(Lattice::kIq2xs);
      return *t;
    }
    case Lattice::kIq2s: {
      static const LatticeTables* const t = new LatticeTables(Lattice::kIq2s);
      return *t;
    }
    case Lattice::kIq1s: {
      static const LatticeTables* const t = new LatticeTables(Lattice::kIq1s);
      return *t;
    }
    case Lattice::kIq3xxs: {
      static const LatticeTables* const t = new LatticeTables(Lattice::kIq3xxs);
      return *t;
    }
    case Lattice::kIq3s:
      break;
  }
  static const LatticeTables* const t = new LatticeTables(Lattice::kIq3s);
  return *t;
}

}  // namespace quantd::core::gguf::iq

namespace quantd::core::gguf::iq {
namespace {

// Dequantization values of a grid: each coordinate's level mapped through
// `value_of` (the format's values per level), computed at compile time.
template <class T, int kPoints, int kDims, int kBits>
struct ValueGrid {
  T v[kPoints][kDims];
};

template <class T, int kPoints, int kDims, int kBits>
constexpr ValueGrid<T, kPoints, kDims, kBits> MakeValueGrid(const uint16_t (&grid)[kPoints],
                                                            const T (&value_of)[8]) {
  ValueGrid<T, kPoints, kDims, kBits> g{};
  for (int k = 0; k < kPoints; ++k) {
    for (int i = 0; i < kDims; ++i) {
      g.v[k][i] = value_of[(grid[k] >> (kBits * i)) & ((1 << kBits) - 1)];
    }
  }
  return g;
}

constexpr uint8_t kIq2Levels[8] = {8, 25, 43, 0, 0, 0, 0, 0};
constexpr uint8_t kIq3xxsLevels[8] = {4, 12, 20, 28, 36, 44, 52, 62};
constexpr uint8_t kIq3sLevels[8] = {1, 3, 5, 7, 9, 11, 13, 15};
constexpr int8_t kIq1Levels[8] = {-1, 0, 1, 0, 0, 0, 0, 0};

constexpr auto kIq2xxsValues = MakeValueGrid<uint8_t, 256, 8, 2>(kIq2xxsGrid, kIq2Levels);
constexpr auto kIq2xsValues = MakeValueGrid<uint8_t, 512, 8, 2>(kIq2xsGrid, kIq2Levels);
constexpr auto kIq2sValues = MakeValueGrid<uint8_t, 1024, 8, 2>(kIq2sGrid, kIq2Levels);
constexpr auto kIq1sValues = MakeValueGrid<int8_t, 2048, 8, 2>(kIq1sGrid, kIq1Levels);
constexpr auto kIq3xxsValues = MakeValueGrid<uint8_t, 256, 4, 3>(kIq3xxsGrid, kIq3xxsLevels);
constexpr auto kIq3sValues = MakeValueGrid<uint8_t, 512, 4, 3>(kIq3sGrid, kIq3sLevels);

}  // namespace

const uint8_t* Iq2xxsValues(int index) { return kIq2xxsValues.v[index]; }
const uint8_t* Iq2xsValues(int index) { return kIq2xsValues.v[index]; }
const uint8_t* Iq2sValues(int index) { return kIq2sValues.v[index]; }
const int8_t* Iq1sValues(int index) { return kIq1sValues.v[index]; }
const uint8_t* Iq3xxsValues(int index) { return kIq3xxsValues.v[index]; }
const uint8_t* Iq3sValues(int index) { return kIq3sValues.v[index]; }

}  // namespace quantd::core::gguf::iq
