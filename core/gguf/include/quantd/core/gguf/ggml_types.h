// ggml tensor types as stored in GGUF files: ids, block geometry and the
// byte layout of every block type Quantd can produce.
//
// The numeric ids are ggml's (`enum ggml_type`), so they appear unchanged in
// GGUF tensor infos. Each block struct is a POD whose size is a format
// contract (static_assert'ed); fp16 fields hold raw IEEE binary16 bits.
//
// Thread-safety: constants and pure functions only.
#ifndef QUANTD_CORE_GGUF_GGML_TYPES_H_
#define QUANTD_CORE_GGUF_GGML_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

namespace quantd::core::gguf {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

struct GgmlTypeInfo {
  GgmlType type;
  const char* name;    // ggml's lower-case name: "q4_K", "f16", ...
  int64_t block_size;  // elements per block (1 for plain types)
  int64_t type_size;   // bytes per block
  bool quantized;      // block-quantized (not a plain float/int type)
};

// Geometry of a known type id; nullopt for ids Quantd does not know.
std::optional<GgmlTypeInfo> LookupType(uint32_t id);
const GgmlTypeInfo& TypeInfo(GgmlType type);  // REQUIRES: a known type

// Upper-case display name ("Q4_K", "F16", "IQ4_NL").
std::string TypeName(GgmlType type);
// Parses a ggml type name, case-insensitive ("q8_0", "Q8_0", "f16").
std::optional<GgmlType> ParseTypeName(absl::string_view name);

// Bytes of one row of `n` elements. REQUIRES: n % block_size == 0.
inline int64_t RowBytes(GgmlType type, int64_t n) {
  const GgmlTypeInfo& info = TypeInfo(type);
  return n / info.block_size * info.type_size;
}

// ---- block layouts (ggml-common.h) ----
// Each block is a POD: kElements values in sizeof(block) bytes. The size is a
// format contract, asserted after each struct; the type table (TypeInfo)
// takes its geometry from these structs.
inline constexpr int kQK = 32;    // legacy block
inline constexpr int kQKK = 256;  // K-quant super-block

// Types Quantd writes.
struct BlockQ4_0 {
  static constexpr int kElements = kQK;
  uint16_t d;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);
struct BlockQ4_1 {
  static constexpr int kElements = kQK;
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);
struct BlockQ5_0 {
  static constexpr int kElements = kQK;
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);
struct BlockQ5_1 {
  static constexpr int kElements = kQK;
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);
struct BlockQ8_0 {
  static constexpr int kElements = kQK;
  uint16_t d;
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);
struct BlockIQ4_NL {
  static constexpr int kElements = kQK;
  uint16_t d;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 18);
struct BlockQ2_K {
  static constexpr int kElements = kQKK;
  uint8_t scales[kQKK / 16];
  uint8_t qs[kQKK / 4];
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84);
struct BlockQ3_K {
  static constexpr int kElements = kQKK;
  uint8_t hmask[kQKK / 8];
  uint8_t qs[kQKK / 4];
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110);
struct BlockQ4_K {
  static constexpr int kElements = kQKK;
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);
struct BlockQ5_K {
  static constexpr int kElements = kQKK;
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);
struct BlockQ6_K {
  static constexpr int kElements = kQKK;
  uint8_t ql[kQKK / 2];
  uint8_t qh[kQKK / 4];
  int8_t scales[kQKK / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// Types Quantd only recognises (geometry for reading and copying tensors).
struct BlockQ8_1 {
  static constexpr int kElements = kQK;
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_1) == 36);
struct BlockQ8_K {
  static constexpr int kElements = kQKK;
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];
};
static_assert(sizeof(BlockQ8_K) == 292);
struct BlockIQ2_XXS {
  static constexpr int kElements = kQKK;
  uint16_t d;
  uint16_t qs[kQKK / 8];
};
static_assert(sizeof(BlockIQ2_XXS) == 66);
struct BlockIQ2_XS {
  static constexpr int kElements = kQKK;
  uint16_t d;
  uint16_t qs[kQKK / 8];
  uint8_t scales[kQKK / 32];
};
static_assert(sizeof(BlockIQ2_XS) == 74);
struct BlockIQ3_XXS {
  static constexpr int kElements = kQKK;
  uint16_t d;
  uint8_t qs[3 * kQKK / 8];
};
static_assert(sizeof(BlockIQ3_XXS) == 98);
struct BlockIQ1_S {
  static constexpr int kElements = kQKK;
  uint16_t d;
  uint8_t qs[kQKK / 8];
  uint16_t qh[kQKK / 32];
};
static_assert(sizeof(BlockIQ1_S) == 50);
struct BlockIQ3_S {
  static constexpr int kElements = kQKK;
  uint16_t d;
  uint8_t qs[kQKK / 4];
  uint8_t qh[kQKK / 32];
  uint8_t signs[kQKK / 8];
  uint8_t scales[kQKK / 64];
};
static_assert(sizeof(BlockIQ3_S) == 110);
struct BlockIQ2_S {
  static constexpr int kElements = kQKK;
  uint16_t d;
  uint8_t qs[kQKK / 4];
  uint8_t qh[kQKK / 32];
  uint8_t scales[kQKK / 32];
};
static_assert(sizeof(BlockIQ2_S) == 82);
struct BlockIQ4_XS {
  static constexpr int kElements = kQKK;
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQKK / 64];
  uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136);
struct BlockIQ1_M {
  static constexpr int kElements = kQKK;
  uint8_t qs[kQKK / 8];
  uint8_t qh[kQKK / 16];
  uint8_t scales[kQKK / 32];
};
static_assert(sizeof(BlockIQ1_M) == 56);
struct BlockTQ1_0 {
  static constexpr int kElements = kQKK;
  uint8_t qs[(kQKK - 4 * kQKK / 64) / 5];
  uint8_t qh[kQKK / 64];
  uint16_t d;
};
static_assert(sizeof(BlockTQ1_0) == 54);
struct BlockTQ2_0 {
  static constexpr int kElements = kQKK;
  uint8_t qs[kQKK / 4];
  uint16_t d;
};
static_assert(sizeof(BlockTQ2_0) == 66);
struct BlockMXFP4 {
  static constexpr int kElements = kQK;
  uint8_t e;  // shared E8M0 exponent
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockMXFP4) == 17);

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_GGML_TYPES_H_
