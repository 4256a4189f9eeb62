// GGUF conversions (llama-quantize compatible), the GGUF branch of core::Run.
#ifndef QUANTD_CORE_GGUF_GGUF_RUN_H_
#define QUANTD_CORE_GGUF_GGUF_RUN_H_

#include <string>

#include "absl/status/statusor.h"
#include "quantd/core/gguf/tensor_source.h"
#include "quantd/core/recipe.h"
#include "quantd/core/report.h"
#include "quantd/core/run_context.h"

namespace quantd::core {

// Quantizes the GGUF file `input_path` to `output_path` with
// recipe.gguf_type and the GGUF options (--leave-output-tensor,
// --output-tensor-type, --token-embedding-type, --pure, --allow-requantize),
// byte-identical to llama-quantize (b4747) for the same inputs.
//
// The input is memory-mapped and validated; the output is streamed through
// an AtomicFileWriter, so an error or cancellation leaves no output (not even
// a temp file). ctx.Parallelism() threads of ctx.pool quantize each
// tensor's rows and take turns writing the finished chunks in order (no
// thread is added for writing); the bytes do not depend on the thread
// count.
//
// `ctx.progress` is called from the calling thread (phases "load", "convert",
// "done"; tensors done/total; output bytes written/total). `ctx.cancel` is polled
// between tensors (CancelledError). The Report has per-tensor SQNR, relative
// L2 and max |error| for every converted tensor, and the overall quality in
// its notes.
//
// Errors: InvalidArgument for unknown types, malformed or split inputs,
// quantized inputs without allow_requantize, and user types that do not fit
// a tensor's rows; NotFound/Internal from file access.
absl::StatusOr<Report> RunGguf(const Recipe& recipe, const std::string& input_path,
                               const std::string& output_path, const RunContext& ctx);

// The same conversion of any TensorSource (the overload above runs it on a
// GgufFileSource). A source without stored bytes (a checkpoint) is read as
// F32 rows, in parallel chunks, and released tensor by tensor, so memory
// stays at one input tensor's pages plus one output tensor. Progress as
// above except that no "load" phase is reported (the caller opened the
// source). The Report's bytes_before / dtype_before are the source's
// (SourceBytes, SourceDtype).
absl::StatusOr<Report> RunGguf(const Recipe& recipe, const gguf::TensorSource& source,
                               const std::string& output_path, const RunContext& ctx);

}  // namespace quantd::core

#endif  // QUANTD_CORE_GGUF_GGUF_RUN_H_
