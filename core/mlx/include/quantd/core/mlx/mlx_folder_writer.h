// WriteMlxFolder: writes the folder `mlx_lm.convert -q` writes (and
// `mlx_lm.load` opens) from the tensors and config of a Hugging Face
// checkpoint, quantizing with MLX's affine kernel (quant/mlx_affine.h) as
// planned by PlanMlxQuantization (mlx/mlx_quant_plan.h).
//
// Output, as mlx-lm writes it (mlx_lm/utils.py save_model, save_config):
//  * weights: greedy shards of at most max_shard_bytes (5 GiB) of tensor data,
//    "model.safetensors" when one shard is enough, else
//    "model-%05d-of-%05d.safetensors"; safetensors metadata {"format": "mlx"},
//    header as mx.save_safetensors writes it (sorted keys, compact, unpadded).
//    A quantized "<m>.weight" becomes "<m>.weight" uint32 [out, in*bits/32],
//    "<m>.scales" and "<m>.biases" [out, in/group_size] in the weight's
//    (cast) type; other tensors are written as they are (cast when floating).
//    Within a file the data follows the input order (weight, scales, biases
//    per module); MLX's own order is that of its hash map, and readers go by
//    the header's offsets.
//  * model.safetensors.index.json (always): {"metadata": {"total_size",
//    "total_parameters"}, "weight_map": {name: file}} with the names sorted,
//    indent 4. total_parameters counts a quantized weight as out*in.
//  * config.json: the input's, with eos_token_id taken from
//    generation_config.json when that has one, "_name_or_path" and
//    "vision_config" dropped, "quantization" and "quantization_config" set to
//    the plan's object; top-level keys sorted, indent 4 (Python's json.dump).
//  * side files (tokenizer files, generation_config.json, *.py): copied as
//    they are. (mlx-lm re-saves the tokenizer through transformers and adds a
//    README.md model card; neither is reproduced.)
// Before quantizing, floating tensors are cast to config.json's torch_dtype
// when that is float16 / bfloat16 / float32, as mlx_lm.convert does.
// Tensors mlx-lm's model classes drop on load ("*.rotary_emb.inv_freq", and
// "lm_head.weight" when tie_word_embeddings is true) are not written.
//
// Every file is written atomically. `out_dir` must be absent or empty; on an
// error the files written so far stay (core::Run writes into a staging
// folder and renames it into place, so its callers see all or nothing).
// Memory: one tensor (plus its outputs, and one block of float scratch per
// thread) at a time; a tensor's data pointer is requested once.
//
// Thread safety: the function is reentrant. It quantizes a tensor's rows in
// parallel on ctx's pool (blocks of rows written to fixed places, quality
// sums merged in block order: files and report do not depend on the number
// of threads); everything else, including progress reports, runs on the
// calling thread. Cancellation is checked between tensors.
#ifndef QUANTD_CORE_MLX_MLX_FOLDER_WRITER_H_
#define QUANTD_CORE_MLX_MLX_FOLDER_WRITER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "quantd/core/mlx/mlx_quant_plan.h"
#include "quantd/core/quant/quality.h"
#include "quantd/core/report.h"
#include "quantd/core/run_context.h"

namespace quantd::core::mlx {

// One input tensor. `data` returns its bytes: row-major, contiguous,
// little-endian, exactly elements x dtype size; the span must stay valid until
// `data` of another tensor is called or WriteMlxFolder returns (a memory-mapped
// safetensors shard satisfies this for free).
struct MlxSourceTensor {
  std::string name;
  std::string dtype;  // safetensors dtype name
  std::vector<int64_t> shape;
  std::function<absl::StatusOr<absl::Span<const uint8_t>>()> data;
  // Optional: called once every output made from the tensor is written (a
  // memory-mapped source drops the tensor's pages here, so resident memory
  // stays bounded by one tensor).
  std::function<void()> release;
};

struct MlxFolderOptions {
  MlxQuantOptions quant;
  uint64_t max_shard_bytes = uint64_t{5} << 30;  // mlx-lm's MAX_FILE_SIZE_GB
  bool compute_quality = true;                   // SQNR etc. per quantized tensor in the report
  // The output error X W over every row of a weight, or over the fixed-seed
  // sample of quant::ProbeSampleThreshold (the other figures cover every
  // weight either way).
  quant::QualityLevel quality_level = quant::QualityLevel::kSampled;
};

struct MlxFolderResult {
  std::vector<std::string> files;  // written, relative to out_dir
  uint64_t total_size = 0;         // tensor bytes written
  uint64_t total_parameters = 0;
  uint64_t tensors_quantized = 0;
  std::vector<TensorReport> tensors;  // one per input tensor written
  nlohmann::ordered_json config;      // config.json as written
};

// config_json: the checkpoint's config.json text; generation_config_json:
// generation_config.json's text or "" when there is none; side_files: paths of
// files to copy into out_dir under their base names.
// Errors: InvalidArgument (bad options, malformed config JSON, a tensor whose
// data size does not match its shape, unsupported dtype, a NaN or infinite
// weight in a tensor that is quantized), FailedPrecondition
// (out_dir not empty), Cancelled, and I/O errors.
absl::StatusOr<MlxFolderResult> WriteMlxFolder(
    const std::vector<MlxSourceTensor>& tensors, const std::string& config_json,
    const std::string& generation_config_json, const std::vector<std::string>& side_files,
    const std::string& out_dir, const MlxFolderOptions& options, const RunContext& ctx = {});

// Files of a checkpoint folder that mlx_lm.convert carries over: tokenizer
// files, chat templates, generation_config.json and *.py (sorted paths).
std::vector<std::string> ListMlxSideFiles(const std::string& checkpoint_dir);

// The cast mlx_lm.convert applies: "F16", "BF16" or "F32" for a config.json
// torch_dtype of float16, bfloat16 or float32 (or text_config.dtype when
// torch_dtype is absent), else "" (no cast).
std::string MlxCastDtype(const nlohmann::ordered_json& config);

}  // namespace quantd::core::mlx

#endif  // QUANTD_CORE_MLX_MLX_FOLDER_WRITER_H_
