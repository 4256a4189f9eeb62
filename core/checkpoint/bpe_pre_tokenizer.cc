#include "bpe_pre_tokenizer.h"

#include "absl/status/status.h"

namespace quantd::core::checkpoint {

absl::StatusOr<std::string> BpePreTokenizerName(const nlohmann::json& tokenizer_json) {
  return absl::UnimplementedError("BPE pre-tokenizer identification is not implemented yet");
}

}  // namespace quantd::core::checkpoint
