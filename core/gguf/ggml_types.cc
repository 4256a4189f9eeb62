#include "quantd/core/gguf/ggml_types.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace quantd::core::gguf {
namespace {

// Geometry of a block-quantized type, from its block struct.
template <class Block>
constexpr GgmlTypeInfo Blocked(GgmlType type, const char* name) {
  return {type, name, Block::kElements, static_cast<int64_t>(sizeof(Block)), true};
}
// Geometry of a plain element type.
template <class Element>
constexpr GgmlTypeInfo Plain(GgmlType type, const char* name) {
  return {type, name, 1, static_cast<int64_t>(sizeof(Element)), false};
}

constexpr GgmlTypeInfo kTypes[] = {
    Plain<float>(GgmlType::kF32, "f32"),
    Plain<uint16_t>(GgmlType::kF16, "f16"),  // IEEE binary16 bits
    Blocked<BlockQ4_0>(GgmlType::kQ4_0, "q4_0"),
    Blocked<BlockQ4_1>(GgmlType::kQ4_1, "q4_1"),
    Blocked<BlockQ5_0>(GgmlType::kQ5_0, "q5_0"),
    Blocked<BlockQ5_1>(GgmlType::kQ5_1, "q5_1"),
    Blocked<BlockQ8_0>(GgmlType::kQ8_0, "q8_0"),
    Blocked<BlockQ8_1>(GgmlType::kQ8_1, "q8_1"),
    Blocked<BlockQ2_K>(GgmlType::kQ2_K, "q2_K"),
    Blocked<BlockQ3_K>(GgmlType::kQ3_K, "q3_K"),
    Blocked<BlockQ4_K>(GgmlType::kQ4_K, "q4_K"),
    Blocked<BlockQ5_K>(GgmlType::kQ5_K, "q5_K"),
    Blocked<BlockQ6_K>(GgmlType::kQ6_K, "q6_K"),
    Blocked<BlockQ8_K>(GgmlType::kQ8_K, "q8_K"),
    Blocked<BlockIQ2_XXS>(GgmlType::kIQ2_XXS, "iq2_xxs"),
    Blocked<BlockIQ2_XS>(GgmlType::kIQ2_XS, "iq2_xs"),
    Blocked<BlockIQ3_XXS>(GgmlType::kIQ3_XXS, "iq3_xxs"),
    Blocked<BlockIQ1_S>(GgmlType::kIQ1_S, "iq1_s"),
    Blocked<BlockIQ4_NL>(GgmlType::kIQ4_NL, "iq4_nl"),
    Blocked<BlockIQ3_S>(GgmlType::kIQ3_S, "iq3_s"),
    Blocked<BlockIQ2_S>(GgmlType::kIQ2_S, "iq2_s"),
    Blocked<BlockIQ4_XS>(GgmlType::kIQ4_XS, "iq4_xs"),
    Plain<int8_t>(GgmlType::kI8, "i8"),
    Plain<int16_t>(GgmlType::kI16, "i16"),
    Plain<int32_t>(GgmlType::kI32, "i32"),
    Plain<int64_t>(GgmlType::kI64, "i64"),
    Plain<double>(GgmlType::kF64, "f64"),
    Blocked<BlockIQ1_M>(GgmlType::kIQ1_M, "iq1_m"),
    Plain<uint16_t>(GgmlType::kBF16, "bf16"),  // bfloat16 bits
    Blocked<BlockTQ1_0>(GgmlType::kTQ1_0, "tq1_0"),
    Blocked<BlockTQ2_0>(GgmlType::kTQ2_0, "tq2_0"),
    Blocked<BlockMXFP4>(GgmlType::kMXFP4, "mxfp4"),
};

}  // namespace

std::optional<GgmlTypeInfo> LookupType(uint32_t id) {
  for (const auto& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == id) return t;
  }
  return std::nullopt;
}

const GgmlTypeInfo& TypeInfo(GgmlType type) {
  for (const auto& t : kTypes) {
    if (t.type == type) return t;
  }
  std::abort();  // unreachable for enum values
}

std::string TypeName(GgmlType type) { return absl::AsciiStrToUpper(TypeInfo(type).name); }

std::optional<GgmlType> ParseTypeName(absl::string_view name) {
  for (const auto& t : kTypes) {
    if (absl::EqualsIgnoreCase(name, t.name)) return t.type;
  }
  return std::nullopt;
}

}  // namespace quantd::core::gguf
