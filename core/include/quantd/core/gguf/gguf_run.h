// GGUF conversions (llama-quantize compatible), the GGUF branch of core::Run.
#ifndef QUANTD_CORE_GGUF_GGUF_RUN_H_
#define QUANTD_CORE_GGUF_GGUF_RUN_H_

#include <string>

#include "absl/status/statusor.h"
#include "quantd/core/progress.h"
#include "quantd/core/recipe.h"
#include "quantd/core/report.h"

namespace quantd::core {

// Quantizes the GGUF file `input_path` to `output_path` with
// recipe.gguf_type and the GGUF options. Output written atomically.
absl::StatusOr<Report> RunGguf(const Recipe& recipe, const std::string& input_path,
                               const std::string& output_path, const ProgressFn& progress,
                               const CancelToken* cancel);

}  // namespace quantd::core

#endif  // QUANTD_CORE_GGUF_GGUF_RUN_H_
