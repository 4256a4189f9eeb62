// Search tables of the lattice-grid GGUF types (IQ1_S, IQ1_M, IQ2_XXS,
// IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S), built from the published grids the way
// llama.cpp's iq2xs_init_impl / iq3xs_init_impl build theirs, so quantizers
// that search them pick the same points:
//  - the points, one signed byte per coordinate holding 2l + 1;
//  - a map from a packed level vector (2 or 3 bits per coordinate) to the
//    index of the grid point with those levels, or, for a vector that is not
//    a grid point, to its neighbour list: every grid point at the `nwant`
//    smallest distinct squared distances, ordered by (distance, index).
//
// Only level vectors a quantizer can produce get a neighbour list (levels
// 0..2 for the 2-bit grids, every vector for the 3-bit ones); lists depend
// on nothing but their own vector, so this gives the same lists as
// llama.cpp's full tables.
//
// Ownership and thread safety: LatticeTables::Get builds each lattice's
// tables once, on first use (a function-local static, initialised under the
// language's thread-safe static initialisation), and returns a reference to
// an immutable object that lives until exit. Concurrent readers are safe.
// Internal to core/gguf.
#ifndef QUANTD_CORE_GGUF_QUANTS_IQ_TABLES_H_
#define QUANTD_CORE_GGUF_QUANTS_IQ_TABLES_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace quantd::core::gguf::iq {

enum class Lattice {
  kIq2xxs,  // 256 points of 8 coordinates
  kIq2xs,   // 512 points of 8 coordinates
  kIq2s,    // 1024 points of 8 coordinates
  kIq1s,    // 2048 points of 8 coordinates (IQ1_S and IQ1_M)
  kIq3xxs,  // 256 points of 4 coordinates
  kIq3s,    // 512 points of 4 coordinates
};

// Vector kernels read a neighbour list in groups of this many (NeighbourSlots
// rows are padded to a multiple of it).
inline constexpr int kNeighbourPadding = 8;

class LatticeTables {
 public:
  // The tables of `lattice`; built on the first call for that lattice.
  static const LatticeTables& Get(Lattice lattice);

  LatticeTables(const LatticeTables&) = delete;
  LatticeTables& operator=(const LatticeTables&) = delete;

  int dims() const { return dims_; }            // 8 or 4
  int bits() const { return bits_; }            // bits per level in a packed vector
  int grid_size() const { return grid_size_; }  // number of points
  // dims() coordinates of point `index`, each 2l + 1.
  const int8_t* Point(int index) const { return &points_[static_cast<size_t>(index) * dims_]; }
  // The same coordinates as floats, dims() per point (for vector kernels).
  const float* PointsAsFloat() const { return float_points_.data(); }
  // >= 0: the point with these levels; < 0: not a grid point (see Neighbours).
  // REQUIRES: `packed` is a vector a quantizer produces (see the file comment).
  int Map(uint32_t packed) const { return map_[packed]; }
  // The whole map, 2^(bits() * dims()) entries (for vector gathers).
  const int32_t* MapData() const { return map_.data(); }
  // The neighbour list of a non-grid vector: [0] is the count n, [1..n] the
  // point indices. REQUIRES: map_value == Map(v) < 0.
  const uint16_t* Neighbours(int map_value) const {
    return &neighbours_[lists_[-map_value - 1].start];
  }
  // The same list for vector kernels, as positions in per-coordinate tables
  // of 8 entries (one per level): dims() rows of RoundUp(count,
  // kNeighbourPadding) bytes, row i holding for each neighbour in list order
  // the slot of its coordinate i: its level l on the 4-coordinate lattices,
  // l + 4 * (i % 2) on the 8-coordinate ones (levels 0..3, two coordinates
  // to a table); padding slots repeat the first neighbour's, so a vector
  // kernel that reads them finds distances equal to position 0's and, taking
  // the first position holding the minimum, never picks one.
  const uint8_t* NeighbourSlots(int map_value) const {
    return &slots_[lists_[-map_value - 1].slots];
  }
  // NeighbourSlots and the list's count with one look-up.
  struct SlotList {
    const uint8_t* slots;
    int count;
  };
  SlotList NeighbourSlotList(int map_value) const {
    const List& l = lists_[-map_value - 1];
    return {&slots_[l.slots], static_cast<int>(l.count)};
  }

 private:
  explicit LatticeTables(Lattice lattice);

  int dims_ = 0;
  int bits_ = 0;
  int grid_size_ = 0;
  std::vector<int8_t> points_;
  std::vector<float> float_points_;
  std::vector<int32_t> map_;
  std::vector<uint16_t> neighbours_;
  struct List {
    uint32_t start;  // index of the count in neighbours_
    uint32_t slots;  // index of the first row in slots_
    uint32_t count;  // neighbours in the list
  };
  std::vector<List> lists_;
  std::vector<uint8_t> slots_;
};

}  // namespace quantd::core::gguf::iq

#endif  // QUANTD_CORE_GGUF_QUANTS_IQ_TABLES_H_
