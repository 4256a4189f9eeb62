#include "quantd/core/checkpoint/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core::checkpoint {
namespace {

using nlohmann::json;

// A safetensors header is {name: {dtype, shape: [..], data_offsets: [..]}}:
// three levels. Anything much deeper is not a safetensors header.
constexpr int kMaxHeaderDepth = 8;

absl::Status Invalid(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

// Non-negative integer array of exactly `want` elements (any length if want < 0).
bool ReadUintArray(const json& v, int want, std::vector<uint64_t>* out) {
  if (!v.is_array()) return false;
  if (want >= 0 && v.size() != static_cast<size_t>(want)) return false;
  out->clear();
  for (const json& e : v) {
    if (!e.is_number_unsigned()) return false;
    out->push_back(e.get<uint64_t>());
  }
  return true;
}

}  // namespace

absl::string_view DtypeName(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::kF32:
      return "F32";
    case SafetensorsDtype::kF16:
      return "F16";
    case SafetensorsDtype::kBF16:
      return "BF16";
  }
  return "?";
}

int DtypeSize(SafetensorsDtype dtype) { return dtype == SafetensorsDtype::kF32 ? 4 : 2; }

std::optional<SafetensorsDtype> ParseDtype(absl::string_view name) {
  if (name == "F32") return SafetensorsDtype::kF32;
  if (name == "F16") return SafetensorsDtype::kF16;
  if (name == "BF16") return SafetensorsDtype::kBF16;
  return std::nullopt;
}

void DtypeToFloat(SafetensorsDtype dtype, const uint8_t* src, size_t count, float* dst) {
  if (dtype == SafetensorsDtype::kF32) {
    std::memcpy(dst, src, count * sizeof(float));
    return;
  }
  const auto widen = dtype == SafetensorsDtype::kF16 ? HalfToFloatSpan : Bfloat16ToFloatSpan;
  if (reinterpret_cast<uintptr_t>(src) % alignof(uint16_t) == 0) {
    widen(reinterpret_cast<const uint16_t*>(src), dst, count);
    return;
  }
  constexpr size_t kChunk = 2048;  // elements per copy: 4 KiB on the stack
  uint16_t aligned[kChunk];
  for (size_t i = 0; i < count; i += kChunk) {
    const size_t n = std::min(kChunk, count - i);
    std::memcpy(aligned, src + 2 * i, 2 * n);
    widen(aligned, dst + i, n);
  }
}

int64_t SafetensorsTensor::Elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int JsonNestingDepth(absl::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      max_depth = std::max(max_depth, ++depth);
    else if (c == ']' || c == '}')
      --depth;
  }
  return max_depth;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapped, MappedFile::Open(path));
  const absl::Span<const uint8_t> bytes = mapped->bytes();
  if (bytes.size() < 8) {
    return absl::DataLossError(absl::StrCat(path, ": truncated safetensors file: ", bytes.size(),
                                            " bytes, shorter than the 8-byte header length"));
  }
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > kMaxSafetensorsHeaderBytes) {
    return Invalid(
        path, absl::StrCat("safetensors header length ", header_len, " (at byte 0) exceeds the ",
                           kMaxSafetensorsHeaderBytes, "-byte limit"));
  }
  if (header_len > bytes.size() - 8) {
    return absl::DataLossError(
        absl::StrCat(path, ": truncated safetensors file: the header (bytes 8..", 8 + header_len,
                     ") runs past the end of the ", bytes.size(), "-byte file"));
  }
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = bytes.size() - data_start;
  const absl::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), header_len);
  if (JsonNestingDepth(text) > kMaxHeaderDepth) {
    return Invalid(
        path, absl::StrCat("safetensors header JSON (bytes 8..", data_start, ") nests deeper than ",
                           kMaxHeaderDepth, " levels; not a safetensors header"));
  }
  const json header = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    return Invalid(path, absl::StrCat("safetensors header (bytes 8..", data_start,
                                      ") is not well-formed JSON"));
  }
  if (!header.is_object()) {
    return Invalid(path, "safetensors header is not a JSON object");
  }

  std::vector<SafetensorsTensor> tensors;
  tensors.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (!it.value().is_object())
        return Invalid(path, "safetensors '__metadata__' is not an object");
      continue;
    }
    const json& v = it.value();
    const std::string where = absl::StrCat("tensor '", name, "'");
    if (!v.is_object())
      return Invalid(path, absl::StrCat(where, ": header entry is not an object"));
    auto dtype_it = v.find("dtype");
    if (dtype_it == v.end() || !dtype_it->is_string()) {
      return Invalid(path, absl::StrCat(where, ": missing or non-string 'dtype'"));
    }
    SafetensorsTensor t;
    t.name = name;
    const std::string dtype = dtype_it->get<std::string>();
    const std::optional<SafetensorsDtype> parsed = ParseDtype(dtype);
    if (!parsed) {
      return Invalid(path, absl::StrCat(where, " has dtype ", dtype,
                                        "; Quantd reads checkpoints stored as F32, F16 or BF16"));
    }
    t.dtype = *parsed;
    std::vector<uint64_t> shape, offsets;
    auto shape_it = v.find("shape");
    if (shape_it == v.end() || !ReadUintArray(*shape_it, -1, &shape)) {
      return Invalid(
          path,
          absl::StrCat(where, ": 'shape' is missing or not an array of non-negative integers"));
    }
    auto off_it = v.find("data_offsets");
    if (off_it == v.end() || !ReadUintArray(*off_it, 2, &offsets)) {
      return Invalid(
          path,
          absl::StrCat(where, ": 'data_offsets' is missing or not two non-negative integers"));
    }
    // Element count, refusing overflow (bytes must fit in 63 bits).
    uint64_t elements = 1;
    constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / 8;
    for (uint64_t d : shape) {
      if (d != 0 && elements > kMax / d) {
        return Invalid(
            path, absl::StrCat(where, ": shape [", absl::StrJoin(shape, ", "), "] is too large"));
      }
      elements *= d;
      t.shape.push_back(static_cast<int64_t>(d));
    }
    const uint64_t begin = offsets[0], end = offsets[1];
    if (begin > end) {
      return Invalid(path,
                     absl::StrCat(where, ": data_offsets [", begin, ", ", end, "] are reversed"));
    }
    const uint64_t want = elements * static_cast<uint64_t>(DtypeSize(t.dtype));
    if (end - begin != want) {
      return Invalid(
          path, absl::StrCat(where, ": data_offsets [", begin, ", ", end, "] hold ", end - begin,
                             " bytes but ", dtype, " x shape [", absl::StrJoin(shape, ", "),
                             "] needs ", want, " bytes (at file byte ", data_start + begin, ")"));
    }
    if (end > data_size) {
      return absl::DataLossError(absl::StrCat(
          path, ": truncated safetensors file: ", where, " occupies file bytes ",
          data_start + begin, "..", data_start + end, " but the file ends at byte ", bytes.size()));
    }
    t.offset = data_start + begin;
    t.nbytes = want;
    tensors.push_back(std::move(t));
  }

  // Overlap check on the byte ranges (empty tensors cannot overlap).
  std::vector<const SafetensorsTensor*> by_offset;
  for (const auto& t : tensors) {
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(
      by_offset.begin(), by_offset.end(),
      [](const SafetensorsTensor* a, const SafetensorsTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const SafetensorsTensor* prev = by_offset[i - 1];
    const SafetensorsTensor* cur = by_offset[i];
    if (cur->offset < prev->offset + prev->nbytes) {
      return Invalid(path, absl::StrCat("tensor '", cur->name, "' (file bytes ", cur->offset, "..",
                                        cur->offset + cur->nbytes, ") overlaps tensor '",
                                        prev->name, "' (file bytes ", prev->offset, "..",
                                        prev->offset + prev->nbytes, ")"));
    }
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.name < b.name; });
  return std::unique_ptr<SafetensorsFile>(
      new SafetensorsFile(std::move(mapped), std::move(tensors)));
}

const SafetensorsTensor* SafetensorsFile::Find(absl::string_view name) const {
  auto it =
      std::lower_bound(tensors_.begin(), tensors_.end(), name,
                       [](const SafetensorsTensor& t, absl::string_view n) { return t.name < n; });
  if (it == tensors_.end() || it->name != name) return nullptr;
  return &*it;
}

absl::Span<const uint8_t> SafetensorsFile::Data(const SafetensorsTensor& tensor) const {
  return mapped_->bytes().subspan(tensor.offset, tensor.nbytes);
}

void SafetensorsFile::Release(const SafetensorsTensor& tensor) const {
  Release(tensor, 0, tensor.nbytes);
}

void SafetensorsFile::Release(const SafetensorsTensor& tensor, uint64_t begin,
                              uint64_t length) const {
  if (begin >= tensor.nbytes) return;
  length = std::min(length, tensor.nbytes - begin);
  if (length > 0) mapped_->ReleasePages(tensor.offset + begin, length);
}

}  // namespace quantd::core::checkpoint
