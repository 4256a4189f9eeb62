#include "quantd/core/gguf/gguf_split_source.h"

#include <cctype>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core::gguf {

std::string SplitPath(const std::string& prefix, int split_no, int split_count) {
  return absl::StrFormat("%s-%05d-of-%05d.gguf", prefix, split_no + 1, split_count);
}

std::string SplitPrefix(const std::string& path) {
  // "-NNNNN-of-NNNNN.gguf" is 20 characters.
  constexpr size_t kTail = 20;
  if (path.size() <= kTail || !absl::EndsWith(path, ".gguf")) return "";
  const std::string tail = path.substr(path.size() - kTail);
  for (size_t i : {1, 2, 3, 4, 5, 10, 11, 12, 13, 14}) {
    if (!std::isdigit(static_cast<unsigned char>(tail[i]))) return "";
  }
  if (tail[0] != '-' || tail.substr(6, 4) != "-of-") return "";
  return path.substr(0, path.size() - kTail);
}

absl::StatusOr<std::unique_ptr<GgufSplitSource>> GgufSplitSource::Open(const std::string& path) {
  const std::string prefix = SplitPrefix(path);
  if (prefix.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        " has split.* keys but not a split file name (<name>-00001-of-00003.gguf); keep "
        "the names llama-gguf-split gave the parts"));
  }
  std::unique_ptr<GgufSplitSource> s(new GgufSplitSource());
  QUANTD_ASSIGN_OR_RETURN(auto any, GgufFileSource::Open(path));
  const GgufKv* count_kv = any->file().FindKv("split.count");
  const int count = count_kv ? static_cast<int>(count_kv->AsInt().value_or(0)) : 0;
  if (count < 1 || count > 9999) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": bad split.count"));
  }
  int64_t tensors_count = -1;
  for (int i = 0; i < count; ++i) {
    const std::string part_path = SplitPath(prefix, i, count);
    auto part = GgufFileSource::Open(part_path);
    if (!part.ok()) {
      return absl::Status(part.status().code(), absl::StrCat("split model part ", i + 1, " of ",
                                                             count, ": ", part.status().message()));
    }
    const GgufFile& f = (*part)->file();
    const GgufKv* no = f.FindKv("split.no");
    const GgufKv* n = f.FindKv("split.count");
    if (no == nullptr || n == nullptr || no->AsInt() != i || n->AsInt() != count) {
      return absl::InvalidArgumentError(absl::StrCat(
          part_path, " is not part ", i + 1, " of ", count, " (its split.no / split.count say ",
          no ? absl::StrCat(no->AsInt().value_or(-1) + 1) : "none", " of ",
          n ? absl::StrCat(n->AsInt().value_or(-1)) : "none", ")"));
    }
    if (const GgufKv* tc = f.FindKv("split.tensors.count"); tc != nullptr && i == 0) {
      tensors_count = tc->AsInt().value_or(-1);
    }
    for (size_t t = 0; t < f.tensors().size(); ++t) {
      s->tensors_.push_back(f.tensors()[t]);
      s->where_.push_back({i, t});
    }
    s->paths_.push_back(part_path);
    s->parts_.push_back(*std::move(part));
  }
  if (tensors_count >= 0 && tensors_count != static_cast<int64_t>(s->tensors_.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("split model ", prefix, ": split.tensors.count says ", tensors_count,
                     " tensors, the ", count, " parts hold ", s->tensors_.size()));
  }
  std::set<std::string> names;
  for (const GgufTensorInfo& t : s->tensors_) {
    if (!names.insert(t.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("split model ", prefix, ": tensor '", t.name, "' is in two parts"));
    }
  }
  return s;
}

int GgufSplitSource::SplitOf(size_t index) const { return where_[index].part; }

absl::Span<const uint8_t> GgufSplitSource::StoredBytes(size_t index) const {
  return parts_[where_[index].part]->StoredBytes(where_[index].local);
}
void GgufSplitSource::ReadRows(size_t index, int64_t first_row, int64_t num_rows,
                               float* dst) const {
  parts_[where_[index].part]->ReadRows(where_[index].local, first_row, num_rows, dst);
}
void GgufSplitSource::Prefetch(size_t index, uint64_t offset, uint64_t length) const {
  parts_[where_[index].part]->Prefetch(where_[index].local, offset, length);
}
void GgufSplitSource::Release(size_t index) const {
  parts_[where_[index].part]->Release(where_[index].local);
}
std::string GgufSplitSource::SourceDtype(size_t index) const {
  return parts_[where_[index].part]->SourceDtype(where_[index].local);
}
uint64_t GgufSplitSource::SourceBytes(size_t index) const {
  return parts_[where_[index].part]->SourceBytes(where_[index].local);
}

}  // namespace quantd::core::gguf
