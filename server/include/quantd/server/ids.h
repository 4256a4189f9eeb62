// Ids and names the server accepts from clients or makes itself: the rules
// that keep every path the stores build inside their data directory.
//
//   model id   "sha256:<64 lower-case hex>" (formula: quantd/core/base/model_id.h)
//   job id     "job_<20 lower-case hex>" (made by NewJobId)
//   upload id  8 to 64 characters [A-Za-z0-9_-] (the client's choice)
//   file name  [A-Za-z0-9][A-Za-z0-9._-]{0,127}, not reserved
//
// Every function returns InvalidArgument naming the rule when a value breaks it.
//
// Thread safety: pure functions (NewJobId and RandomHex read the OS CSPRNG).
#ifndef QUANTD_SERVER_IDS_H_
#define QUANTD_SERVER_IDS_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::server {

// The metadata file a committed model or artifact directory holds; no
// uploaded or produced file may take its name.
inline constexpr char kManifestFileName[] = "manifest.pb";

// A plain file name: [A-Za-z0-9][A-Za-z0-9._-]{0,127}, not ending in ".tmp",
// not a temp file of AtomicFileWriter, not kManifestFileName.
absl::Status ValidateFileName(absl::string_view name);

// "sha256:<64 hex>" -> the hex (the model's directory name).
absl::StatusOr<std::string> ModelHex(absl::string_view model_id);

// The model id of these files (names, sizes, digests in upload order).
std::string ModelIdFor(const google::protobuf::RepeatedPtrField<v1::FileInfo>& files);

absl::Status ValidateJobId(absl::string_view job_id);
absl::Status ValidateUploadId(absl::string_view upload_id);

// A fresh job id: "job_" + 20 random hex digits.
std::string NewJobId();

// `bytes` random bytes as lower-case hex (from the OS CSPRNG).
std::string RandomHex(size_t bytes);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_IDS_H_
