#include "store_files.h"

#include <fstream>
#include <sstream>

#include "quantd/core/base/atomic_file.h"

namespace quantd::server {
namespace fs = std::filesystem;

absl::Status WriteProtoFile(const std::string& path, const google::protobuf::MessageLite& msg) {
  return core::WriteFileAtomically(path, msg.SerializeAsString());
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": not found"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t TreeBytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)) total += it->file_size(ec2);
  }
  return total;
}

}  // namespace quantd::server
