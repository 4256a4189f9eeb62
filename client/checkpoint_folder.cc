#include "quantd/client/checkpoint_folder.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace quantd::client {
namespace {
namespace fs = std::filesystem;

constexpr char kConfig[] = "config.json";
constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndex[] = "model.safetensors.index.json";
// Read when present, in this order, after the weights.
constexpr const char* kOptional[] = {"tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                                     "special_tokens_map.json", "added_tokens.json"};
// The index is small; anything larger or deeper is left for the server to refuse.
constexpr uint64_t kMaxIndexBytes = 64ull << 20;
constexpr int kMaxIndexDepth = 64;

// Collects the string values of the top-level "weight_map" object without
// building a document (nlohmann's SAX parser is iterative).
class WeightMapShards : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::set<std::string> shards;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t& s) override {
    if (depth_ == 2 && in_weight_map_) shards.insert(s);
    return true;
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return Enter(); }
  bool end_object() override { return Leave(); }
  bool start_array(std::size_t) override { return Enter(); }
  bool end_array() override { return Leave(); }
  bool key(string_t& k) override {
    if (depth_ == 1) next_is_weight_map_ = k == "weight_map";
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool Enter() {
    ++depth_;
    if (depth_ == 2) in_weight_map_ = next_is_weight_map_;
    return depth_ <= kMaxIndexDepth;
  }
  bool Leave() {
    if (depth_ == 2) in_weight_map_ = false;
    --depth_;
    return true;
  }
  int depth_ = 0;
  bool next_is_weight_map_ = false;
  bool in_weight_map_ = false;
};

bool IsFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);  // follows symbolic links (Hugging Face cache folders)
}

// The shard names in the index, or nullopt when it cannot be read as JSON.
std::optional<std::set<std::string>> IndexShards(const fs::path& index) {
  std::error_code ec;
  const uint64_t size = fs::file_size(index, ec);
  if (ec || size > kMaxIndexBytes) return std::nullopt;
  std::ifstream in(index, std::ios::binary);
  std::string text(size, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) return std::nullopt;
  WeightMapShards sax;
  if (!nlohmann::json::sax_parse(text, &sax)) return std::nullopt;
  return sax.shards;
}

}  // namespace

bool IsCheckpointFolder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && IsFile(fs::path(path) / kConfig);
}

absl::StatusOr<CheckpointFolder> SelectCheckpointFiles(const std::string& dir) {
  const fs::path root(dir);
  if (!IsCheckpointFolder(dir)) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, " is not a Hugging Face checkpoint folder: it has no config.json"));
  }
  CheckpointFolder out;
  {
    fs::path abs = fs::absolute(root).lexically_normal();
    if (abs.filename().empty()) abs = abs.parent_path();  // "dir/" and "."
    out.name = abs.filename().string();
  }
  std::vector<std::string> names = {kConfig};
  if (IsFile(root / "generation_config.json")) names.push_back("generation_config.json");
  if (IsFile(root / kIndex)) {
    names.push_back(kIndex);
    std::optional<std::set<std::string>> shards = IndexShards(root / kIndex);
    for (const std::string& shard : shards.value_or(std::set<std::string>{})) {
      if (shard.empty() || shard == "." || shard == ".." ||
          shard.find_first_of("/\\") != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat((root / kIndex).string(), " names '", shard,
                                                       "', which is not a file in the folder"));
      }
      if (!IsFile(root / shard)) {
        return absl::NotFoundError(
            absl::StrCat((root / kIndex).string(), " names shard ", shard, ", which is missing"));
      }
      names.push_back(shard);
    }
  } else if (IsFile(root / kSingleFile)) {
    names.push_back(kSingleFile);
  } else {
    return absl::NotFoundError(absl::StrCat(dir, " has no ", kSingleFile, " or ", kIndex,
                                            " (Quantd reads safetensors weights only)"));
  }
  for (const char* name : kOptional) {
    if (IsFile(root / name)) names.push_back(name);
  }
  for (const std::string& n : names) out.files.push_back((root / n).string());

  const std::set<std::string> chosen(names.begin(), names.end());
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string name = entry.path().filename().string();
    if (chosen.count(name) != 0) continue;
    std::error_code ec2;
    if (entry.is_directory(ec2)) name += "/";
    out.skipped.push_back(std::move(name));
  }
  std::sort(out.skipped.begin(), out.skipped.end());
  return out;
}

}  // namespace quantd::client
