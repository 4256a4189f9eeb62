// ModelId: the identity of an uploaded model, an API contract shared by the
// server (which names committed models by it) and clients (which compute it
// before uploading to skip a model the server already has). See
// Model.model_id in proto/quantd/v1/quantd.proto:
//
//   "sha256:" + hex sha256 of
//     "quantd-model-v1\n" + for each file in upload order (model first):
//     name + "\n" + decimal size + "\n" + hex sha256 + "\n"
//
// Thread safety: pure functions.
#ifndef QUANTD_CORE_BASE_MODEL_ID_H_
#define QUANTD_CORE_BASE_MODEL_ID_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace quantd::core {

// One file of a model as the formula sees it. Views: the caller keeps the
// strings alive for the call.
struct ModelFileDigest {
  absl::string_view name;
  uint64_t size_bytes = 0;
  absl::string_view sha256;  // lower-case hex
};

// The model id of `files` (in upload order).
std::string ModelIdOf(absl::Span<const ModelFileDigest> files);

// The same for any range of objects with name(), size_bytes() and sha256()
// (e.g. quantd.v1.FileInfo), so callers need no copy of the formula.
template <typename FileRange>
std::string ModelIdOfFiles(const FileRange& files) {
  std::vector<ModelFileDigest> digests;
  for (const auto& f : files) digests.push_back({f.name(), f.size_bytes(), f.sha256()});
  return ModelIdOf(digests);
}

// "sha256:<64 hex>" -> the 64 hex digits; InvalidArgument otherwise.
absl::StatusOr<std::string> ModelIdHex(absl::string_view model_id);

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_MODEL_ID_H_
