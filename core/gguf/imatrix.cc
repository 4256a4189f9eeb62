#include "quantd/core/gguf/imatrix.h"

#include <cmath>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/read_file.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/gguf/gguf_file.h"

namespace quantd::core::gguf {
namespace {

// Little-endian reader over the legacy format with bounds checks.
class Cursor {
 public:
  Cursor(absl::Span<const uint8_t> bytes, const std::string& what) : b_(bytes), what_(what) {}
  bool AtEnd() const { return pos_ >= b_.size(); }
  absl::StatusOr<int32_t> Int(absl::string_view field) {
    int32_t v = 0;
    QUANTD_RETURN_IF_ERROR(Bytes(&v, sizeof(v), field));
    return v;
  }
  absl::Status Bytes(void* out, uint64_t n, absl::string_view field) {
    if (n > b_.size() - pos_) {
      return absl::InvalidArgumentError(absl::StrCat("importance matrix ", what_, ": ", field,
                                                     " runs past the end of the file (offset ",
                                                     pos_, ")"));
    }
    if (n > 0) std::memcpy(out, b_.data() + pos_, n);
    pos_ += n;
    return absl::OkStatus();
  }

 private:
  absl::Span<const uint8_t> b_;
  const std::string& what_;
  uint64_t pos_ = 0;
};

absl::Status CheckFinite(const std::string& what, const std::string& name,
                         const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(absl::StrCat("importance matrix ", what, ": entry '", name,
                                                     "' has a non-finite value at column ", i));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ImportanceMatrix> ParseLegacy(absl::Span<const uint8_t> bytes,
                                             const std::string& what) {
  Cursor c(bytes, what);
  QUANTD_ASSIGN_OR_RETURN(const int32_t n_entries, c.Int("the entry count"));
  if (n_entries < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("importance matrix ", what, " has no entries (count ", n_entries, ")"));
  }
  ImportanceMatrix m;
  for (int32_t i = 0; i < n_entries; ++i) {
    const std::string entry = absl::StrCat("entry ", i + 1);
    QUANTD_ASSIGN_OR_RETURN(const int32_t len, c.Int(entry + "'s name length"));
    if (len < 0 || len > (1 << 16)) {
      return absl::InvalidArgumentError(
          absl::StrCat("importance matrix ", what, ": ", entry, " has a bad name length ", len));
    }
    std::string name(static_cast<size_t>(len), '\0');
    QUANTD_RETURN_IF_ERROR(c.Bytes(name.data(), name.size(), entry + "'s name"));
    name.resize(std::strlen(name.c_str()));  // as a C string
    QUANTD_ASSIGN_OR_RETURN(const int32_t ncall, c.Int(entry + "'s call count"));
    QUANTD_ASSIGN_OR_RETURN(const int32_t nval, c.Int(entry + "'s value count"));
    if (nval < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("importance matrix ", what, ": entry '", name, "' has ", nval, " values"));
    }
    std::vector<float> v(static_cast<size_t>(nval));
    QUANTD_RETURN_IF_ERROR(
        c.Bytes(v.data(), v.size() * sizeof(float), absl::StrCat("entry '", name, "''s values")));
    if (ncall > 0) {
      for (float& x : v) x /= static_cast<float>(ncall);
    }
    QUANTD_RETURN_IF_ERROR(CheckFinite(what, name, v));
    m.entries[name] = std::move(v);
  }
  if (!c.AtEnd()) {  // newer files: chunk count and dataset name
    QUANTD_ASSIGN_OR_RETURN(m.chunks, c.Int("the chunk count"));
    QUANTD_ASSIGN_OR_RETURN(const int32_t len, c.Int("the dataset name length"));
    if (len < 0 || len > (1 << 20)) {
      return absl::InvalidArgumentError(
          absl::StrCat("importance matrix ", what, ": bad dataset name length ", len));
    }
    m.dataset.resize(static_cast<size_t>(len));
    QUANTD_RETURN_IF_ERROR(c.Bytes(m.dataset.data(), m.dataset.size(), "the dataset name"));
  }
  return m;
}

absl::StatusOr<ImportanceMatrix> ParseGguf(absl::Span<const uint8_t> bytes,
                                           const std::string& what) {
  auto parsed = GgufFile::Parse(bytes);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("importance matrix ", what, ": ", parsed.status().message()));
  }
  const GgufFile& f = *parsed;
  const GgufKv* datasets = f.FindKv("imatrix.datasets");
  const GgufKv* chunk_count = f.FindKv("imatrix.chunk_count");
  if (datasets == nullptr || chunk_count == nullptr || f.FindKv("imatrix.chunk_size") == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("importance matrix ", what,
                     " is a GGUF file without the imatrix.datasets / imatrix.chunk_count / "
                     "imatrix.chunk_size keys; is it a model rather than an importance matrix?"));
  }
  ImportanceMatrix m;
  m.chunks = static_cast<int>(chunk_count->AsInt().value_or(0));
  // The first dataset name (llama-quantize records that one).
  if (auto info = datasets->ArrayInfo();
      info && info->first == GgufValueType::kString && info->second > 0) {
    const std::string& raw = datasets->raw;
    uint64_t len = 0;
    if (raw.size() >= 20) {
      std::memcpy(&len, raw.data() + 12, sizeof(len));
      if (len <= raw.size() - 20) m.dataset = raw.substr(20, len);
    }
  }
  struct Pair {
    const GgufTensorInfo* sums = nullptr;
    const GgufTensorInfo* counts = nullptr;
  };
  std::map<std::string, Pair> pairs;
  for (const GgufTensorInfo& t : f.tensors()) {
    if (absl::EndsWith(t.name, ".in_sum2")) {
      pairs[t.name.substr(0, t.name.size() - 8)].sums = &t;
    } else if (absl::EndsWith(t.name, ".counts")) {
      pairs[t.name.substr(0, t.name.size() - 7)].counts = &t;
    }
  }
  auto data = [&](const GgufTensorInfo& t) {
    return reinterpret_cast<const float*>(bytes.data() + f.data_offset() + t.offset);
  };
  for (const auto& [name, p] : pairs) {
    if (p.sums == nullptr || p.counts == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("importance matrix ", what, ": '", name,
                                                     "' has ", p.sums ? "sums" : "counts",
                                                     " but no ", p.sums ? "counts" : "sums"));
    }
    if (p.sums->type != GgmlType::kF32 || p.counts->type != GgmlType::kF32 || p.sums->ne.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("importance matrix ", what, ": '", name, "' sums and counts must be F32"));
    }
    const int64_t ne0 = p.sums->ne[0];
    const int64_t nmat = ne0 > 0 ? p.sums->Elements() / ne0 : 0;
    if (ne0 < 1 || p.counts->Elements() != nmat) {
      return absl::InvalidArgumentError(absl::StrCat("importance matrix ", what, ": '", name,
                                                     "' has ", p.counts->Elements(), " counts for ",
                                                     nmat, " matrices of sums"));
    }
    const float* sums = data(*p.sums);
    const float* counts = data(*p.counts);
    std::vector<float> v(static_cast<size_t>(ne0 * nmat));
    for (int64_t j = 0; j < nmat; ++j) {
      float count;
      std::memcpy(&count, counts + j, sizeof(count));
      for (int64_t i = 0; i < ne0; ++i) {
        float s;
        std::memcpy(&s, sums + j * ne0 + i, sizeof(s));
        v[static_cast<size_t>(j * ne0 + i)] = count > 0.0f ? s / count : 1.0f;
      }
    }
    QUANTD_RETURN_IF_ERROR(CheckFinite(what, name, v));
    m.entries[name] = std::move(v);
  }
  if (m.entries.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("importance matrix ", what, " has no entries"));
  }
  return m;
}

}  // namespace

absl::StatusOr<ImportanceMatrix> ParseImportanceMatrix(absl::Span<const uint8_t> bytes,
                                                       const std::string& what) {
  uint32_t magic = 0;
  if (bytes.size() >= 4) std::memcpy(&magic, bytes.data(), 4);
  if (magic == kGgufMagic) return ParseGguf(bytes, what);
  return ParseLegacy(bytes, what);
}

absl::StatusOr<ImportanceMatrix> ReadImportanceMatrix(const std::string& path) {
  QUANTD_ASSIGN_OR_RETURN(std::string bytes,
                          ReadFileUpTo(path, kMaxImatrixBytes, "an importance matrix"));
  return ParseImportanceMatrix(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      path);
}

absl::Status FilterImportanceMatrix(const std::vector<std::string>& include,
                                    const std::vector<std::string>& exclude,
                                    ImportanceMatrix* matrix) {
  if (!include.empty() && !exclude.empty()) {
    return absl::InvalidArgumentError(
        "imatrix_include and imatrix_exclude cannot be used together (as in llama-quantize)");
  }
  auto contains_any = [](const std::string& name, const std::vector<std::string>& parts) {
    for (const std::string& p : parts) {
      if (absl::StrContains(name, p)) return true;
    }
    return false;
  };
  for (auto it = matrix->entries.begin(); it != matrix->entries.end();) {
    const bool drop =
        contains_any(it->first, exclude) || (!include.empty() && !contains_any(it->first, include));
    it = drop ? matrix->entries.erase(it) : std::next(it);
  }
  return absl::OkStatus();
}

}  // namespace quantd::core::gguf
