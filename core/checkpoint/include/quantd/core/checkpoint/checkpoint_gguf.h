// A Hugging Face checkpoint seen as a GGUF model, and the writer that turns
// it into the file llama.cpp's convert_hf_to_gguf.py (b4747) writes.
//
// CheckpointGgufSource is the checkpoint as a GGUF *source*
// (gguf::TensorSource): the metadata (KVs) and tensor infos of the F32
// conversion, in the converter's order, plus each tensor's values as F32 on
// demand (renamed, q/k rows permuted where the architecture needs it,
// BF16/F16 widened exactly). It is what a parsed F32 GGUF file offers,
// without the file: writing kvs() + tensors() + ReadRows() gives
// `convert_hf_to_gguf.py --outtype f32` byte for byte, so RunGguf on it
// (llama-quantize's mix rules) gives the bytes of "convert --outtype f32,
// then llama-quantize" in one step.
//
// WriteCheckpointGguf writes the converter's own outtypes (F32, F16, BF16,
// Q8_0) with its per-tensor rules: 1-D tensors, norms and non-".weight"
// tensors stay F32; Q8_0 falls back to F16 for rows not a multiple of 32.
// RunCheckpointGguf picks between the two by recipe.gguf_type.
//
// Streaming: tensors are read from the mapped shards and written through an
// AtomicFileWriter in bounded row chunks; the input pages of each chunk are
// released once it is written. Peak memory is a small constant (plus, for
// q/k tensors whose rows are permuted, that tensor's pages), independent of
// model size. On error
// or cancellation no output (not even a temp file) is left.
//
// Thread safety: a source is immutable after Open; ReadRows may be called
// concurrently for different (or the same) tensors.
#ifndef QUANTD_CORE_CHECKPOINT_CHECKPOINT_GGUF_H_
#define QUANTD_CORE_CHECKPOINT_CHECKPOINT_GGUF_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "quantd/core/checkpoint/architecture.h"
#include "quantd/core/checkpoint/checkpoint.h"
#include "quantd/core/gguf/ggml_types.h"
#include "quantd/core/gguf/gguf_file.h"
#include "quantd/core/gguf/gguf_mix.h"
#include "quantd/core/gguf/tensor_source.h"
#include "quantd/core/recipe.h"
#include "quantd/core/report.h"
#include "quantd/core/run_context.h"

namespace quantd::core::checkpoint {

// Produces the tokenizer.* KVs for a checkpoint, in the converter's order;
// `architecture` is config.json's class name ("Phi3ForCausalLM"). In
// production this is TokenizerGgufKvs (tokenizer_gguf.h); tests may pass
// another.
using TokenizerKvsFn = std::function<absl::StatusOr<std::vector<gguf::GgufKv>>(
    const std::string& checkpoint_dir, const nlohmann::json& config,
    absl::string_view architecture)>;

// The tokenizer reader: TokenizerGgufKvs.
TokenizerKvsFn DefaultTokenizerKvs();

struct CheckpointGgufOptions {
  // The name the converter's general.* heuristics see as the folder name.
  // Empty: the checkpoint folder's own name. (A service keeps files under
  // content digests and passes the uploaded folder's name here.)
  std::string folder_name;
  // nullptr: no tokenizer.* KVs are written (the output then lacks a
  // vocabulary and llama.cpp will not load it).
  TokenizerKvsFn tokenizer_kvs;
};

class CheckpointGgufSource final : public gguf::TensorSource {
 public:
  // Opens and validates the checkpoint: architecture, config values, every
  // tensor's presence and shape, rope scaling. Errors as Checkpoint::Open,
  // plus InvalidArgument for an unsupported architecture (listing the
  // supported ones), a missing / unexpected / mis-shaped tensor (naming it
  // and the shape config.json implies), or an unknown rope_scaling type.
  static absl::StatusOr<std::unique_ptr<CheckpointGgufSource>> Open(
      const std::string& dir, const CheckpointGgufOptions& options);

  CheckpointGgufSource(const CheckpointGgufSource&) = delete;
  CheckpointGgufSource& operator=(const CheckpointGgufSource&) = delete;

  const Checkpoint& checkpoint() const { return *checkpoint_; }
  const Architecture& architecture() const { return *arch_; }
  // Metadata of the F32 conversion (general.file_type = 0), in order.
  const std::vector<gguf::GgufKv>& kvs() const override { return kvs_; }
  // Tensor infos of the F32 conversion: type F32, offsets laid out with
  // alignment(), in the converter's order.
  const std::vector<gguf::GgufTensorInfo>& tensors() const override { return tensors_; }
  uint64_t alignment() const override { return gguf::kGgufDefaultAlignment; }
  // Things the caller should tell the user (e.g. what was not converted).
  const std::vector<std::string>& notes() const { return notes_; }

  // Always empty: values are computed (ReadRows).
  absl::Span<const uint8_t> StoredBytes(size_t /*index*/) const override { return {}; }
  // Writes rows [first_row, first_row + num_rows) of tensor `index` (GGUF
  // rows: ne[0] values each) as F32 to `dst`.
  // REQUIRES: index < tensors().size(), the rows exist, dst holds
  // num_rows * ne[0] floats.
  void ReadRows(size_t index, int64_t first_row, int64_t num_rows, float* dst) const override;
  // Releases the resident shard pages of tensor `index`; the second form
  // those of rows [first_row, first_row + num_rows) where the rows are stored
  // in order (a hint: permuted tensors are released by the first form only).
  void Release(size_t index) const override;
  void ReleaseRows(size_t index, int64_t first_row, int64_t num_rows) const;
  // Bytes tensor `index` occupies in the checkpoint (0 for generated ones).
  uint64_t SourceBytes(size_t index) const override;
  // Its stored dtype: "F32", "F16" or "BF16" ("F32" for generated ones).
  std::string SourceDtype(size_t index) const override;

  // The type convert_hf_to_gguf.py gives tensor `index` for `outtype`
  // (kAllF32, kF16, kBF16 or kQ8_0).
  gguf::GgmlType ConverterType(size_t index, gguf::FileType outtype) const;

 private:
  struct Entry {
    const Checkpoint::TensorRef* ref = nullptr;  // nullptr: generated
    std::vector<float> generated;                // rope factor tensors
    Permute permute = Permute::kNone;
    int64_t permute_heads = 0;
  };

  CheckpointGgufSource() = default;

  std::unique_ptr<Checkpoint> checkpoint_;
  const Architecture* arch_ = nullptr;
  Hparams hparams_;
  std::vector<gguf::GgufKv> kvs_;
  std::vector<gguf::GgufTensorInfo> tensors_;
  std::vector<Entry> entries_;  // parallel to tensors_
  std::vector<std::string> notes_;
};

// Writes `source` as the converter's `outtype` (kAllF32, kF16, kBF16 or
// kQ8_0; InvalidArgument otherwise) to `output_path`. `ctx.progress` gets phase
// "convert" per tensor and "done"; `ctx.cancel` is polled between tensors.
absl::StatusOr<Report> WriteCheckpointGguf(const CheckpointGgufSource& source,
                                           gguf::FileType outtype, const std::string& output_path,
                                           const RunContext& ctx);

// Whether `ftype` is one of convert_hf_to_gguf.py's own outtypes (F32, F16,
// BF16, Q8_0), written by WriteCheckpointGguf with the converter's rules.
bool IsConverterOuttype(gguf::FileType ftype);

// The checkpoint branch of core::Run: `input_dir` is a checkpoint folder.
// recipe.gguf_type F32, F16, BF16 or Q8_0: WriteCheckpointGguf (the llama-
// quantize options are refused there); any other type llama-quantize has
// (Q4_K_M, Q4_0, ... with its options): RunGguf on the checkpoint source,
// the bytes of `convert_hf_to_gguf.py --outtype f32` followed by
// `llama-quantize TYPE` without the intermediate file. recipe.model_name,
// when set, stands for the folder's name in the general.* naming keys. Progress: "load",
// then "convert" per tensor (tensors done / total), then "done".
absl::StatusOr<Report> RunCheckpointGguf(const Recipe& recipe, const std::string& input_dir,
                                         const std::string& output_path, const RunContext& ctx);

}  // namespace quantd::core::checkpoint

#endif  // QUANTD_CORE_CHECKPOINT_CHECKPOINT_GGUF_H_
