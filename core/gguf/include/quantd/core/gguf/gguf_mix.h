// llama-quantize's file types ("mixes") and its per-tensor type choice.
//
// Given a file type (Q4_K_M, ...) and the options of a recipe, MixPlanner
// decides for each tensor, in llama-quantize's processing order, whether it
// is quantized and to which ggml type: by tensor kind (attn_v, ffn_down,
// attn_output, attn_qkv, output, token_embd, ...), by layer index, and with
// fallbacks when a row length is not a multiple of the block size. The rules
// reproduce llama.cpp b4747 (src/llama-quant.cpp) for the types Quantd
// writes.
//
// Thread safety: MixPlanner is stateful (layer counters); use one per run
// from one thread.
#ifndef QUANTD_CORE_GGUF_GGUF_MIX_H_
#define QUANTD_CORE_GGUF_GGUF_MIX_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "quantd/core/gguf/ggml_types.h"
#include "quantd/core/gguf/gguf_file.h"
#include "quantd/core/name_patterns.h"

namespace quantd::core::gguf {

// llama_ftype values (stored as general.file_type).
enum class FileType : uint32_t {
  kAllF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 7,
  kQ5_0 = 8,
  kQ5_1 = 9,
  kQ2_K = 10,
  kQ3_K_S = 11,
  kQ3_K_M = 12,
  kQ3_K_L = 13,
  kQ4_K_S = 14,
  kQ4_K_M = 15,
  kQ5_K_S = 16,
  kQ5_K_M = 17,
  kQ6_K = 18,
  kIQ2_XXS = 19,
  kIQ2_XS = 20,
  kQ2_K_S = 21,
  kIQ3_XS = 22,
  kIQ3_XXS = 23,
  kIQ1_S = 24,
  kIQ4_NL = 25,
  kIQ3_S = 26,
  kIQ3_M = 27,
  kIQ2_S = 28,
  kIQ2_M = 29,
  kIQ4_XS = 30,
  kIQ1_M = 31,
  kBF16 = 32,
  kTQ1_0 = 36,
  kTQ2_0 = 37,
};

// "Q4_K_M", "q8_0", "F16", ... (case-insensitive). InvalidArgument lists the
// accepted names.
absl::StatusOr<FileType> ParseFileType(absl::string_view name);
// The canonical name of a file type ("Q4_K_M" for the alias "Q4_K").
std::string FileTypeName(FileType ftype);
// Every name ParseFileType accepts, upper-case: the file types, then
// llama-quantize's aliases (Q3_K, Q4_K, Q5_K for their _M variants).
std::vector<std::string> FileTypeNames();
// The base ggml type of a file type (Q4_K for Q4_K_M, ...).
GgmlType DefaultType(FileType ftype);
// Whether llama-quantize refuses the file type without an importance matrix
// (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, Q2_K_S: the result would be garbage).
bool RequiresImportance(FileType ftype);

struct MixOptions {
  FileType ftype = FileType::kQ4_K_M;
  bool quantize_output_tensor = true;            // false: --leave-output-tensor
  std::optional<GgmlType> output_tensor_type;    // --output-tensor-type
  std::optional<GgmlType> token_embedding_type;  // --token-embedding-type
  bool pure = false;                             // --pure
  bool has_imatrix = false;  // an importance matrix is given (changes some rules)
  // --tensor-type REGEX=TYPE, in order: pattern i (lower-cased, searched in
  // the name) asks for tensor_type_types[i].
  NamePatterns tensor_type_patterns;
  std::vector<GgmlType> tensor_type_types;
};

// Model facts the rules look at, from the GGUF metadata.
struct ModelFacts {
  std::string arch;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int n_expert = 0;
  bool has_output = false;  // the model has output.weight (untied embeddings)
  int n_attention_wv = 0;   // attn_v / attn_qkv / attn_kv_b tensors
  int n_gqa() const { return n_head_kv > 0 ? n_head / n_head_kv : 0; }
  bool is_70b() const { return arch == "llama" && n_layer == 80 && n_head != n_head_kv; }
};

// Reads ModelFacts from a model's metadata and tensor infos (a parsed file's,
// or any TensorSource's).
ModelFacts GetModelFacts(const std::vector<GgufKv>& kvs,
                         const std::vector<GgufTensorInfo>& tensors);
ModelFacts GetModelFacts(const GgufFile& file);

// llama.cpp's tensor order: non-block tensors first, then by block index;
// by name within each group.
std::vector<size_t> ProcessingOrder(const std::vector<GgufTensorInfo>& tensors);

// Whether llama-quantize would quantize a tensor at all (names ending in
// "weight", >= 2 dims, not norms, not expert gates, ...).
bool TensorAllowsQuantization(const GgufTensorInfo& t, const MixOptions& options);

class MixPlanner {
 public:
  MixPlanner(ModelFacts facts, MixOptions options);

  // The output type of `t`. Call once per tensor, in ProcessingOrder.
  // InvalidArgument if a user-chosen type cannot hold the tensor's rows.
  // `rule`, if given, receives what decided: "copy" (not quantized), "mix",
  // "pure", "tensor_type[i]" (--tensor-type i), "output_tensor_type",
  // "token_embedding_type", with " fallback" when the row length forced one.
  absl::StatusOr<GgmlType> Choose(const GgufTensorInfo& t, std::string* rule = nullptr);

  int fallbacks() const { return n_fallback_; }

 private:
  GgmlType MixType(GgmlType new_type, const GgufTensorInfo& t);
  GgmlType Fallback(GgmlType type, const GgufTensorInfo& t);

  const ModelFacts facts_;
  const MixOptions options_;
  bool IsIq2Family() const;

  int i_attention_wv_ = 0;
  int i_ffn_down_ = 0;
  int i_ffn_gate_ = 0;
  int i_ffn_up_ = 0;
  int n_fallback_ = 0;
};

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_GGUF_MIX_H_
