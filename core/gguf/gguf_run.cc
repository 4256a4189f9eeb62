#include "quantd/core/gguf/gguf_run.h"

namespace quantd::core {

// Placeholder until the GGUF issue lands: refuses clearly.
absl::StatusOr<Report> RunGguf(const Recipe&, const std::string&, const std::string&,
                               const ProgressFn&, const CancelToken*) {
  return absl::UnimplementedError("GGUF conversion is not available in this build yet");
}

}  // namespace quantd::core
