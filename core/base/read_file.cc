#include "quantd/core/base/read_file.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace quantd::core {

absl::StatusOr<std::string> ReadFileUpTo(const std::string& path, uint64_t max_bytes,
                                         absl::string_view what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(path, ": cannot stat: ", ec.message()));
  if (size > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", size, " bytes is larger than the ",
                                                   max_bytes, "-byte limit for ", what));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) {
    return absl::DataLossError(absl::StrCat(path, ": short read"));
  }
  return bytes;
}

}  // namespace quantd::core
