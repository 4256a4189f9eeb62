// The general.* naming metadata llama.cpp's converter (gguf-py Metadata,
// b4747) derives from a model id such as "microsoft/Phi-3.5-mini-instruct"
// or a checkpoint folder name such as "phi3-tiny-shared". These strings are
// part of the output bytes, so the rules are reproduced exactly: split on
// '-', tag version / quant-type / size-label / finetune parts, take the
// leading untagged parts as the basename, and title-case the whole id.
//
// Thread safety: pure functions.
#ifndef QUANTD_CORE_CHECKPOINT_MODEL_NAME_H_
#define QUANTD_CORE_CHECKPOINT_MODEL_NAME_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace quantd::core::checkpoint {

struct ModelIdComponents {
  std::optional<std::string> full_name;     // the id without its organisation
  std::optional<std::string> organization;  // "microsoft" in "microsoft/Phi-3"
  std::optional<std::string> basename;
  std::optional<std::string> finetune;
  std::optional<std::string> version;
  std::optional<std::string> size_label;
};

// Metadata.get_model_id_components. `total_params` > 0 lets size-like parts
// far from the real size (context lengths such as "4k") count as finetune.
ModelIdComponents ModelIdToComponents(absl::string_view model_id, int64_t total_params);

// Metadata.id_to_title: "phi3-tiny-shared" -> "Phi3 Tiny Shared".
std::string IdToTitle(absl::string_view id);

// gguf.size_label for a dense model: 4186448 -> "4.2M", 3821079552 -> "3.8B".
std::string SizeLabel(int64_t total_params);

// The general.* naming fields, in the order the converter writes them.
struct GeneralNaming {
  std::string name;
  std::optional<std::string> version;
  std::optional<std::string> organization;
  std::optional<std::string> finetune;
  std::optional<std::string> basename;
  std::optional<std::string> size_label;
};

// What the converter writes for a checkpoint whose config.json has
// `name_or_path` (its "_name_or_path", if any) and whose folder is named
// `folder_name`, with `total_params` parameters in the output. (The model
// card README.md is not consulted.)
GeneralNaming DeriveGeneralNaming(const std::optional<std::string>& name_or_path,
                                  absl::string_view folder_name, int64_t total_params);

}  // namespace quantd::core::checkpoint

#endif  // QUANTD_CORE_CHECKPOINT_MODEL_NAME_H_
