// core::Run: one conversion, the single entry point the CLI and the service
// call. Knows nothing about gRPC.
//
// Thread safety: Run may be called concurrently for different outputs; each
// call owns its model. Several calls may share one ThreadPool through their
// RunContexts. `ctx.progress` is called from the calling thread.
#ifndef QUANTD_CORE_RUN_H_
#define QUANTD_CORE_RUN_H_

#include <string>

#include "absl/status/statusor.h"
#include "quantd/core/progress.h"
#include "quantd/core/recipe.h"
#include "quantd/core/report.h"
#include "quantd/core/run_context.h"

namespace quantd::core {

// Detects the format of a model file from its first bytes ("GGUF" magic, else
// ONNX protobuf). NotFound if the file cannot be read.
absl::StatusOr<ModelFormat> DetectFormat(const std::string& path);

// What a Hugging Face checkpoint folder converts to under `recipe`: an MLX
// folder (format mlx), an ONNX Runtime GenAI folder (format onnx, or format
// auto with a precision and no gguf_type -- so the ONNX presets apply to
// checkpoints), else a GGUF file. True for the two folder outputs.
bool CheckpointOutputIsFolder(const Recipe& recipe);
bool CheckpointToOnnx(const Recipe& recipe);

// Whether a dry run (recipe.dry_run: the per-tensor plan and output size,
// nothing written) can plan this conversion. Only GGUF outputs of the
// llama-quantize path have a plan: a GGUF input, or a checkpoint folder
// (`checkpoint_input`) with a gguf_type other than the converter's outtypes
// F32, F16, BF16 and Q8_0. OK when recipe.dry_run is off; else
// InvalidArgument saying which conversions can be planned.
absl::Status CheckDryRun(const Recipe& recipe, bool checkpoint_input);

// Converts `input_path` (a .onnx with its external data beside it, a .gguf,
// or a Hugging Face checkpoint folder -- a directory with config.json --
// which is written as GGUF, or as an MLX or ONNX Runtime GenAI folder at
// `output_path`, absent or empty: CheckpointOutputIsFolder) to `output_path`
// according to `recipe`. Output files are written atomically (a folder as a
// whole): on any
// error (including cancellation) no output is left.
// Errors: InvalidArgument (bad recipe, corrupt or unsupported model),
// NotFound (missing files), DataLoss (truncated data), Cancelled,
// ResourceExhausted (disk full, protobuf limits), FailedPrecondition (an
// MLX output folder that exists and is not empty).
//
// `ctx` brings progress, cancellation and the threads to use; the bytes
// written do not depend on its parallelism. recipe.threads is not read here:
// callers size ctx from it (the CLI) or treat it as a hint (the server).
absl::StatusOr<Report> Run(const Recipe& recipe, const std::string& input_path,
                           const std::string& output_path, const RunContext& ctx = {});

}  // namespace quantd::core

#endif  // QUANTD_CORE_RUN_H_
