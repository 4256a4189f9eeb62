// The files that make up an ONNX model on disk (the .onnx plus the external
// data files it names), and renaming an artifact's external data file so a
// downloaded model can live under any name.
//
// OnnxExternalDataFiles streams over the file's protobuf wire format (memory
// stays bounded for a 2 GB single-file model); RelocateOnnxExternalData parses
// the ModelProto, which is small once the weights are external.
// Thread safety: pure functions.
#ifndef QUANTD_CLIENT_QUANTCTL_ONNX_FILES_H_
#define QUANTD_CLIENT_QUANTCTL_ONNX_FILES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quantd::quantctl {

// The external data locations `onnx_path` refers to (initializers, Constant
// nodes, sparse tensors and subgraphs), in file order, without duplicates.
// Each is a plain file name in the model's folder. InvalidArgument when the file is not
// an ONNX model or a location is a path (contains '/' or ".."); NotFound when
// a referenced file is missing.
absl::StatusOr<std::vector<std::string>> OnnxExternalDataFiles(const std::string& onnx_path);

// Rewrites every external data location `from` to `to` in the model at
// `onnx_path` (in place, atomically: temp file, fsync, rename).
absl::Status RelocateOnnxExternalData(const std::string& onnx_path, const std::string& from,
                                      const std::string& to);

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_ONNX_FILES_H_
