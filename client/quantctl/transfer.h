// The file-level steps `quantize`, `upload`, `submit` and `download` share:
// finding a model's files on disk and uploading them, and writing a job's
// artifact next to an output path.
//
// Thread safety: thread-compatible (one command at a time).
#ifndef QUANTD_CLIENT_QUANTCTL_TRANSFER_H_
#define QUANTD_CLIENT_QUANTCTL_TRANSFER_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "context.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::quantctl {

// The files of the model at `input`: the model itself, then (for ONNX) the
// external data files it names, found in its folder, then `extra`. A
// Hugging Face checkpoint folder gives the files a conversion reads
// (client::SelectCheckpointFiles), its name and what it leaves out.
// NotFound when `input` is missing; DataLoss when a named data file is.
struct ModelInput {
  std::vector<std::string> paths;    // model first
  std::string model_name;            // a checkpoint folder's name; else empty
  std::vector<std::string> skipped;  // a checkpoint folder's entries not uploaded
};
absl::StatusOr<ModelInput> ModelFiles(const std::string& input,
                                      const std::vector<std::string>& extra);

struct UploadResult {
  v1::Model model;
  bool skipped = false;                    // the server already had this content
  std::string model_name;                  // as ModelInput
  std::vector<std::string> skipped_files;  // as ModelInput::skipped
};

// Hashes and uploads the model at `input` (see ModelFiles) with progress,
// saying which files of a checkpoint folder it leaves out.
absl::StatusOr<UploadResult> UploadModel(CommandContext& ctx, const std::string& input,
                                         const std::vector<std::string>& extra,
                                         const std::map<std::string, std::string>& labels);

// Where each artifact file goes for `output`: the first (model) file to
// `output`; a file named "<first name><suffix>" (e.g. "model.onnx.data") to
// "<output><suffix>"; any other file beside `output` under its own name.
struct PlannedFile {
  v1::FileInfo info;
  std::string path;
};
std::vector<PlannedFile> PlanArtifact(const v1::Artifact& artifact, const std::string& output);

// Downloads `job`'s artifact (the job must be SUCCEEDED) to `output` as
// planned above (an existing directory or a path ending in '/' means "in
// there, under the artifact's name"): every file resumable and verified against the server's
// sha256; data files are renamed into place first and the model file last,
// with its external data locations rewritten when a data file was renamed.
// Returns the paths written, model first.
// A folder artifact (Artifact.folder: an MLX folder) goes into the folder
// `output` instead, every file under its own name; the files are downloaded
// into "<output>.download/" (resumed from there) and that folder is renamed
// to `output` once all are verified. `output` must be absent or an empty
// folder (FailedPrecondition).
absl::StatusOr<std::vector<std::string>> DownloadArtifact(CommandContext& ctx, const v1::Job& job,
                                                          const std::string& output);

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_TRANSFER_H_
