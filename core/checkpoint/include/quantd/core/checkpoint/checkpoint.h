// Checkpoint: a Hugging Face checkpoint folder opened for reading —
// config.json, generation_config.json (optional), and the weights as
// model.safetensors or shards named by model.safetensors.index.json.
//
// Open() validates every shard header (see SafetensorsFile) and the folder as
// a whole before any tensor data is read:
//   - NotFound: no config.json, no weights, a shard the index names is missing;
//   - InvalidArgument: malformed config/index JSON, a tensor stored in two
//     shards, a tensor the index places in a shard that does not hold it, a
//     shard tensor the index does not list;
//   - DataLoss: a truncated shard.
//
// Tensors are listed in the order llama.cpp's converter reads them: shards in
// file-name order, tensors by name within a shard.
//
// Ownership: owns the mapped shards; spans returned by TensorData stay valid
// while the Checkpoint lives. Thread safety: immutable after Open; const
// methods may be called from any thread.
#ifndef QUANTD_CORE_CHECKPOINT_CHECKPOINT_H_
#define QUANTD_CORE_CHECKPOINT_CHECKPOINT_H_

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "quantd/core/checkpoint/safetensors.h"

namespace quantd::core::checkpoint {

// Largest config / index / generation_config JSON Open() reads.
inline constexpr uint64_t kMaxCheckpointJsonBytes = 64ull << 20;

// True when `path` is a directory holding config.json (how core::Run tells a
// checkpoint folder from a model file).
bool IsCheckpointDir(const std::string& path);

// Reads and parses a small JSON file (size and nesting limited).
// NotFound if absent; InvalidArgument if malformed.
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);

// The tokenizer files of a checkpoint folder (full paths, sorted), which
// exports copy unchanged: tokenizer.json, tokenizer_config.json,
// special_tokens_map.json, tokenizer.model, added_tokens.json, vocab.json,
// merges.txt, chat_template.jinja / .json, tiktoken.model, *.tiktoken.
std::vector<std::string> ListTokenizerFiles(const std::string& dir);

class Checkpoint {
 public:
  struct TensorRef {
    const SafetensorsFile* shard;
    const SafetensorsTensor* tensor;
  };

  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& dir);

  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  const std::string& dir() const { return dir_; }
  const nlohmann::json& config() const { return config_; }
  // Empty object when the folder has no (valid) generation_config.json.
  const nlohmann::json& generation_config() const { return generation_config_; }
  // Every tensor, in the converter's reading order.
  const std::vector<TensorRef>& tensors() const { return tensors_; }
  // nullptr when absent.
  const TensorRef* Find(absl::string_view name) const;
  // Shard file names (relative to dir), in reading order.
  std::vector<std::string> ShardNames() const;

 private:
  Checkpoint() = default;

  std::string dir_;
  nlohmann::json config_;
  nlohmann::json generation_config_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::vector<TensorRef> tensors_;
};

}  // namespace quantd::core::checkpoint

#endif  // QUANTD_CORE_CHECKPOINT_CHECKPOINT_H_
