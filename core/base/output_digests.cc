#include "quantd/core/base/output_digests.h"

#include <filesystem>
#include <utility>

namespace quantd::core {

void OutputDigests::Record(const std::string& path, uint64_t size, std::string sha256_hex) {
  absl::MutexLock lock(&mu_);
  by_path_[path] = Digest{size, std::move(sha256_hex)};
}

std::optional<OutputDigests::Digest> OutputDigests::Find(absl::string_view file_name) const {
  absl::MutexLock lock(&mu_);
  std::optional<Digest> found;
  int matches = 0;
  for (const auto& [path, digest] : by_path_) {
    if (std::filesystem::path(path).filename().string() != file_name) continue;
    ++matches;
    found = digest;
  }
  if (matches != 1 || found->sha256.empty()) return std::nullopt;
  return found;
}

}  // namespace quantd::core
