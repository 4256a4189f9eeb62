// RunCheckpointOnnx: a Hugging Face checkpoint folder -> an ONNX Runtime
// GenAI model folder, the job of `onnxruntime_genai.models.builder -e cpu`:
//
//   model.onnx, model.onnx.data   the decoder (decoder_graph.h), every
//                                 initializer in the one external-data file
//   genai_config.json             genai_config.h
//   tokenizer files               tokenizer.json, tokenizer_config.json,
//                                 special_tokens_map.json, tokenizer.model,
//                                 added_tokens.json, ... copied unchanged
//
// Precision (recipe.precision):
//   fp32  float32 weights and I/O;
//   fp16  float16 weights, I/O and KV cache (the float pass with
//         keep_io_types off);
//   int4  MatMulNBits 4-bit on every MatMul, LM head included, block 32,
//         symmetric, accuracy_level 4 unless the recipe says otherwise; every
//         recipe knob of the ONNX weight pass applies (block size, asymmetric,
//         --algorithm search, lm_head, exclusions, QDQ form);
//   int8  the same with MatMulNBits 8-bit;
// A tied embedding table whose LM head is quantized symmetrically is stored
// once: the embedding reads the LM head's MatMulNBits codes through
// com.microsoft.GatherBlockQuantized, as the model builder does.
//
// Memory: the graph is built without reading weights; Save() produces and
// writes one tensor at a time (peak: about two float32 copies of the largest
// tensor). The folder is written into a staging folder and renamed into
// place: all or nothing. `output_dir` must be absent or empty.
//
// Thread safety: reentrant; ctx's pool quantizes within a tensor.
#ifndef QUANTD_CORE_GENAI_GENAI_RUN_H_
#define QUANTD_CORE_GENAI_GENAI_RUN_H_

#include <string>

#include "absl/status/statusor.h"
#include "quantd/core/recipe.h"
#include "quantd/core/report.h"
#include "quantd/core/run_context.h"

namespace quantd::core::genai {

absl::StatusOr<Report> RunCheckpointOnnx(const Recipe& recipe, const std::string& checkpoint_dir,
                                         const std::string& output_dir, const RunContext& ctx);

// The recipe a checkpoint export applies: `recipe` with the model builder's
// defaults for what it leaves unset (accuracy_level 4, LM head quantized
// like the other weights).
Recipe GenaiRecipe(const Recipe& recipe);

}  // namespace quantd::core::genai

#endif  // QUANTD_CORE_GENAI_GENAI_RUN_H_
