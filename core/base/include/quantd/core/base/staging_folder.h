// StagingFolder: writes a multi-file output (an MLX folder, an ONNX Runtime
// GenAI folder) all or nothing. The files go into a fresh sibling folder
// "<out>.partial-XXXXXX" on the same file system; Publish() renames it onto
// the output path (rename(2) replaces an absent or empty folder and fails on
// a non-empty one, so an output is never merged into) and syncs the parent.
// Destroying an unpublished StagingFolder removes it with its contents, so
// an error or a cancellation leaves nothing behind.
//
// Ownership: owns the staging folder until Publish(). Thread safety: one
// owner; the folder's files may be written by any thread meanwhile.
#ifndef QUANTD_CORE_BASE_STAGING_FOLDER_H_
#define QUANTD_CORE_BASE_STAGING_FOLDER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quantd::core {

class StagingFolder {
 public:
  // `output_dir` ("out" or "out/") must be absent or an empty folder, else
  // FailedPrecondition naming it and `what` ("an MLX output"). Creates the
  // parent folders and the staging folder (PermissionDenied / errno status).
  static absl::StatusOr<std::unique_ptr<StagingFolder>> Create(const std::string& output_dir,
                                                               const std::string& what);

  StagingFolder(const StagingFolder&) = delete;
  StagingFolder& operator=(const StagingFolder&) = delete;
  ~StagingFolder();

  // Where to write the files now.
  const std::string& path() const { return path_; }
  // The final folder (absolute, no trailing '/').
  const std::string& output() const { return output_; }

  // Moves the staging folder into place; afterwards path() is gone and the
  // files are under output().
  absl::Status Publish();

 private:
  StagingFolder(std::string path, std::string output)
      : path_(std::move(path)), output_(std::move(output)) {}

  std::string path_;  // empty once published
  std::string output_;
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_STAGING_FOLDER_H_
