#include "quantd/core/base/staging_folder.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/errno_status.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core {
namespace fs = std::filesystem;

absl::StatusOr<std::unique_ptr<StagingFolder>> StagingFolder::Create(const std::string& output_dir,
                                                                     const std::string& what) {
  std::string trimmed = output_dir;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  std::error_code ec;
  if (fs::exists(trimmed, ec) && (!fs::is_directory(trimmed, ec) || !fs::is_empty(trimmed, ec))) {
    return absl::FailedPreconditionError(
        absl::StrCat(trimmed, " exists and is not an empty folder; ", what, " is a new folder"));
  }
  const fs::path out_path = fs::absolute(fs::path(trimmed));
  fs::create_directories(out_path.parent_path(), ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat(out_path.parent_path().string(), ": cannot create: ", ec.message()));
  }
  std::string templ = absl::StrCat(out_path.string(), ".partial-XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) return ErrnoToStatus(errno, "mkdtemp", templ);
  // mkdtemp makes it 0700; the published folder reads like any other.
  ::chmod(templ.c_str(), 0755);
  return std::unique_ptr<StagingFolder>(new StagingFolder(templ, out_path.string()));
}

StagingFolder::~StagingFolder() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

absl::Status StagingFolder::Publish() {
  if (::rename(path_.c_str(), output_.c_str()) != 0) {
    return ErrnoToStatus(errno, "rename", output_);
  }
  path_.clear();
  return SyncParentDirectory(output_);
}

}  // namespace quantd::core
