#include "quantd/server/ids.h"

#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/model_id.h"
#include "quantd/core/base/quoted.h"

namespace quantd::server {

absl::Status ValidateFileName(absl::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("file name ", core::Quoted(name), " must have 1 to 128 characters"));
  }
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  };
  bool alnum_first = (name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
                     (name[0] >= '0' && name[0] <= '9');
  for (char c : name) {
    if (!ok_char(c) || !alnum_first) {
      return absl::InvalidArgumentError(absl::StrCat(
          "file name ", core::Quoted(name),
          " is not a plain name: use letters, digits, '.', '_' and '-', starting with a "
          "letter or digit, no directories"));
    }
  }
  if (absl::EndsWith(name, ".tmp") || absl::StrContains(name, ".tmp-") ||
      name == kManifestFileName) {
    return absl::InvalidArgumentError(
        absl::StrCat("file name ", core::Quoted(name), " is reserved"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ModelHex(absl::string_view model_id) {
  return core::ModelIdHex(model_id);
}

std::string ModelIdFor(const google::protobuf::RepeatedPtrField<v1::FileInfo>& files) {
  return core::ModelIdOfFiles(files);
}

absl::Status ValidateJobId(absl::string_view job_id) {
  bool ok = job_id.size() == 24 && absl::StartsWith(job_id, "job_");
  for (size_t i = 4; ok && i < job_id.size(); ++i) {
    char c = job_id[i];
    ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat("job id ", core::Quoted(job_id),
                                                   " is malformed; expected job_<20 hex digits>"));
  }
  return absl::OkStatus();
}

absl::Status ValidateUploadId(absl::string_view id) {
  bool ok = id.size() >= 8 && id.size() <= 64;
  for (char c : id) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "upload id ", core::Quoted(id), " is malformed; use 8 to 64 characters [A-Za-z0-9_-]"));
  }
  return absl::OkStatus();
}

std::string NewJobId() { return absl::StrCat("job_", RandomHex(10)); }

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  return absl::BytesToHexString(raw);
}

}  // namespace quantd::server
