// A Hugging Face checkpoint folder seen from the client: which of its files a
// conversion reads (and are uploaded as the model), which it does not (README,
// .git, pytorch_model.bin / *.pth duplicates of the weights, images, ...),
// and the folder's name, which the converter's general.* keys derive from.
//
// What a conversion reads: config.json (first), generation_config.json, the
// weights as model.safetensors or model.safetensors.index.json plus the
// shards it names, and the tokenizer files tokenizer.model, tokenizer.json,
// tokenizer_config.json, special_tokens_map.json, added_tokens.json — each
// one that exists.
//
// Thread safety: a pure function of the file system.
#ifndef QUANTD_CLIENT_CHECKPOINT_FOLDER_H_
#define QUANTD_CLIENT_CHECKPOINT_FOLDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quantd::client {

struct CheckpointFolder {
  std::string name;                  // the folder's own name ("Phi-3.5-mini-instruct")
  std::vector<std::string> files;    // paths to upload, config.json first
  std::vector<std::string> skipped;  // entries left out, sorted; folders end in '/'
};

// True when `path` is a directory holding config.json.
bool IsCheckpointFolder(const std::string& path);

// Selects the files of the checkpoint folder `dir`. InvalidArgument when it
// has no config.json, or its index names something that is not a plain file
// name; NotFound when it has no safetensors weights or a shard the index
// names is missing. An index that is not valid JSON is uploaded without
// shards (the server's job then says what is wrong with it).
absl::StatusOr<CheckpointFolder> SelectCheckpointFiles(const std::string& dir);

}  // namespace quantd::client

#endif  // QUANTD_CLIENT_CHECKPOINT_FOLDER_H_
