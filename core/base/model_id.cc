#include "quantd/core/base/model_id.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/quoted.h"
#include "quantd/core/base/sha256.h"

namespace quantd::core {

namespace {
constexpr absl::string_view kPrefix = "sha256:";
}  // namespace

std::string ModelIdOf(absl::Span<const ModelFileDigest> files) {
  std::string identity = "quantd-model-v1\n";
  for (const ModelFileDigest& f : files) {
    absl::StrAppend(&identity, f.name, "\n", f.size_bytes, "\n", f.sha256, "\n");
  }
  return absl::StrCat(kPrefix, Sha256Hex(identity));
}

absl::StatusOr<std::string> ModelIdHex(absl::string_view model_id) {
  if (!absl::StartsWith(model_id, kPrefix) || !IsSha256Hex(model_id.substr(kPrefix.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("model id ", Quoted(model_id),
                     " is malformed; expected sha256:<64 lower-case hex digits>"));
  }
  return std::string(model_id.substr(kPrefix.size()));
}

}  // namespace quantd::core
