#include "quantd/core/checkpoint/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/read_file.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core::checkpoint {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";
// config.json and friends are shallow; anything deeper is refused unparsed.
constexpr int kMaxJsonDepth = 64;

// A shard name from the index must be a plain file name inside the folder.
bool SafeFileName(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name != "." && name != "..";
}

}  // namespace

std::vector<std::string> ListTokenizerFiles(const std::string& dir) {
  static constexpr const char* kNames[] = {
      "tokenizer.json",    "tokenizer_config.json", "special_tokens_map.json",
      "tokenizer.model",   "added_tokens.json",     "vocab.json",
      "merges.txt",        "chat_template.jinja",   "chat_template.json",
      "tiktoken.model"};
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    const std::string base = entry.path().filename().string();
    bool want = absl::EndsWith(base, ".tiktoken");
    for (const char* n : kNames) want = want || base == n;
    if (want) out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool IsCheckpointDir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_regular_file(fs::path(path) / "config.json", ec);
}

absl::StatusOr<json> ReadJsonFile(const std::string& path) {
  QUANTD_ASSIGN_OR_RETURN(const std::string text,
                          ReadFileUpTo(path, kMaxCheckpointJsonBytes, "JSON"));
  if (JsonNestingDepth(text) > kMaxJsonDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": JSON nests deeper than ", kMaxJsonDepth, " levels"));
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return absl::InvalidArgumentError(absl::StrCat(path, ": not well-formed JSON"));
  return j;
}

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& dir) {
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->dir_ = dir;
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    return absl::NotFoundError(absl::StrCat(dir, ": not a directory"));
  QUANTD_ASSIGN_OR_RETURN(ckpt->config_, ReadJsonFile((root / "config.json").string()));
  if (!ckpt->config_.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat((root / "config.json").string(), ": not a JSON object"));
  }
  // Like the converter, an unreadable generation_config.json is ignored.
  auto gen = ReadJsonFile((root / "generation_config.json").string());
  ckpt->generation_config_ = gen.ok() && gen->is_object() ? *gen : json::object();

  // Which shards, and which tensor the index puts where.
  std::map<std::string, std::string> weight_map;  // tensor -> shard
  std::vector<std::string> shard_names;
  const std::string index_path = (root / kIndexFile).string();
  const bool has_index = fs::is_regular_file(index_path, ec);
  if (has_index) {
    QUANTD_ASSIGN_OR_RETURN(json index, ReadJsonFile(index_path));
    auto wm = index.is_object() ? index.find("weight_map") : index.end();
    if (!index.is_object() || wm == index.end() || !wm->is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": no 'weight_map' object"));
    }
    std::set<std::string> names;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string() || !SafeFileName(it.value().get<std::string>())) {
        return absl::InvalidArgumentError(
            absl::StrCat(index_path, ": tensor '", it.key(),
                         "' maps to something that is not a shard file name"));
      }
      weight_map[it.key()] = it.value().get<std::string>();
      names.insert(it.value().get<std::string>());
    }
    if (names.empty())
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": 'weight_map' is empty"));
    shard_names.assign(names.begin(), names.end());  // sorted, as the converter reads them
  } else if (fs::is_regular_file(root / kSingleFile, ec)) {
    shard_names.push_back(kSingleFile);
  } else {
    return absl::NotFoundError(absl::StrCat(dir, ": no ", kSingleFile, " or ", kIndexFile,
                                            " (Quantd reads safetensors weights only)"));
  }

  for (const std::string& name : shard_names) {
    const std::string path = (root / name).string();
    if (!fs::exists(path, ec)) {
      std::string example;
      for (const auto& [tensor, shard] : weight_map) {
        if (shard == name) {
          example = absl::StrCat(" (it holds tensor '", tensor, "')");
          break;
        }
      }
      return absl::NotFoundError(
          absl::StrCat(path, ": shard named by ", kIndexFile, " is missing", example));
    }
    QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> shard, SafetensorsFile::Open(path));
    ckpt->shards_.push_back(std::move(shard));
  }

  // No tensor in two shards; the index and the shards agree.
  std::map<std::string, const SafetensorsFile*> seen;
  for (const auto& shard : ckpt->shards_) {
    const std::string shard_name = fs::path(shard->path()).filename().string();
    for (const SafetensorsTensor& t : shard->tensors()) {
      auto [it, inserted] = seen.emplace(t.name, shard.get());
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' is stored twice: in ",
                                                       it->second->path(), " and in ",
                                                       shard->path()));
      }
      if (has_index) {
        auto wm = weight_map.find(t.name);
        if (wm == weight_map.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat(shard->path(), ": tensor '", t.name, "' is not listed in ", index_path));
        }
      }
      ckpt->tensors_.push_back(TensorRef{shard.get(), &t});
    }
  }
  for (const auto& [tensor, shard_name] : weight_map) {
    auto it = seen.find(tensor);
    const std::string shard_path = (root / shard_name).string();
    if (it == seen.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, " places tensor '", tensor, "' in ", shard_path,
                       ", which does not hold it (nor does any other shard)"));
    }
    if (fs::path(it->second->path()).filename().string() != shard_name) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, " places tensor '", tensor,
                                                     "' in ", shard_path, ", but it is stored in ",
                                                     it->second->path()));
    }
  }
  return ckpt;
}

const Checkpoint::TensorRef* Checkpoint::Find(absl::string_view name) const {
  for (const TensorRef& r : tensors_) {
    if (r.tensor->name == name) return &r;
  }
  return nullptr;
}

std::vector<std::string> Checkpoint::ShardNames() const {
  std::vector<std::string> out;
  for (const auto& s : shards_) out.push_back(fs::path(s->path()).filename().string());
  return out;
}

}  // namespace quantd::core::checkpoint
