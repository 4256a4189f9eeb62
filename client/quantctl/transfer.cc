#include "transfer.h"

#include <unistd.h>

#include <cctype>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "interrupter.h"
#include "onnx_files.h"
#include "quantd/client/checkpoint_folder.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/recipe.h"

namespace quantd::quantctl {
namespace {

bool LooksOnnx(const std::string& name) { return absl::EndsWithIgnoreCase(name, ".onnx"); }

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// While alive, Ctrl-C interrupts `session`'s transfers and says how to resume.
class InterruptTransfers {
 public:
  InterruptTransfers(CommandContext& ctx, Session* session, absl::string_view what) {
    Interrupter::SetHandler([&ctx, session, what = std::string(what)] {
      ctx.progress().Line(
          absl::StrCat("interrupted: run the same command again to resume the ", what));
      session->Interrupt();
    });
  }
  ~InterruptTransfers() { Interrupter::SetHandler(nullptr); }
  InterruptTransfers(const InterruptTransfers&) = delete;
  InterruptTransfers& operator=(const InterruptTransfers&) = delete;
};

}  // namespace

// The "-00002-of-00003.gguf" tail of a llama.cpp split GGUF file name, or
// "" (the name format llama-gguf-split writes and llama.cpp reads).
std::string SplitTail(const std::string& name) {
  constexpr size_t kTail = 20;
  if (name.size() <= kTail || !absl::EndsWith(name, ".gguf")) return "";
  const std::string tail = name.substr(name.size() - kTail);
  for (size_t i : {1, 2, 3, 4, 5, 10, 11, 12, 13, 14}) {
    if (!std::isdigit(static_cast<unsigned char>(tail[i]))) return "";
  }
  if (tail[0] != '-' || tail.substr(6, 4) != "-of-") return "";
  return tail;
}

absl::StatusOr<ModelInput> ModelFiles(const std::string& input,
                                      const std::vector<std::string>& extra) {
  std::error_code ec;
  ModelInput model;
  std::vector<std::string>& paths = model.paths;
  if (std::filesystem::is_directory(input, ec)) {
    auto folder = client::SelectCheckpointFiles(input);
    if (!folder.ok()) return folder.status();
    paths = std::move(folder->files);
    model.model_name = std::move(folder->name);
    model.skipped = std::move(folder->skipped);
    if (auto st = core::ValidateModelName(model.model_name); !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("folder ", input, ": ", st.message(), "; pass --model-name NAME"));
    }
  } else if (!std::filesystem::is_regular_file(input, ec)) {
    return absl::NotFoundError(absl::StrCat(input, ": no such file"));
  } else if (const std::string tail = SplitTail(input); !tail.empty()) {
    // One part of a split GGUF model: upload every part, part 1 first.
    const std::string prefix = input.substr(0, input.size() - tail.size());
    const int count = std::stoi(tail.substr(10, 5));
    for (int i = 1; i <= count; ++i) {
      const std::string part = absl::StrFormat("%s-%05d-of-%05d.gguf", prefix, i, count);
      if (!std::filesystem::is_regular_file(part, ec)) {
        return absl::NotFoundError(absl::StrCat(part, ": no such file (part ", i, " of ", count,
                                                " of the split model ", input, ")"));
      }
      paths.push_back(part);
    }
  } else {
    paths = {input};
  }
  if (LooksOnnx(input)) {
    auto data = OnnxExternalDataFiles(input);
    if (data.ok()) {
      const std::filesystem::path dir = std::filesystem::path(input).parent_path();
      for (const auto& f : *data) paths.push_back((dir / f).string());
    } else if (data.status().code() == absl::StatusCode::kNotFound) {
      return absl::DataLossError(data.status().message());
    }
    // Not parseable as ONNX: upload the file as is; the server's job says
    // what is wrong with it.
  }
  for (const auto& e : extra) {
    if (std::find(paths.begin(), paths.end(), e) == paths.end()) paths.push_back(e);
  }
  return model;
}

absl::StatusOr<UploadResult> UploadModel(CommandContext& ctx, const std::string& input,
                                         const std::vector<std::string>& extra,
                                         const std::map<std::string, std::string>& labels) {
  auto input_files = ModelFiles(input, extra);
  if (!input_files.ok()) return input_files.status();
  if (!input_files->skipped.empty()) {
    ctx.progress().Line(absl::StrCat(
        "upload: skipping ", input_files->skipped.size(),
        " file(s) a conversion does not read: ", absl::StrJoin(input_files->skipped, ", ")));
  }
  // Unless --hash-first, each file is read once: hashed while it uploads.
  const bool hash_first = ctx.options().session.hash_first;
  const auto hash_start = std::chrono::steady_clock::now();
  auto files = DescribeFiles(input_files->paths, hash_first, [&ctx](uint64_t done, uint64_t all) {
    ctx.progress().Transfer("hash", done, all);
  });
  if (!files.ok()) {
    ctx.progress().Finish();
    return files.status();
  }
  uint64_t total = 0;
  for (const auto& f : *files) total += f.size;
  if (hash_first) {
    ctx.progress().EndTransfer(absl::StrCat("hash: ", files->size(), " file(s), ",
                                            HumanBytes(total), " in ",
                                            HumanSeconds(SecondsSince(hash_start))));
  }
  auto session = ctx.session();
  if (!session.ok()) return session.status();
  UploadResult result;
  result.model_name = input_files->model_name;
  result.skipped_files = input_files->skipped;
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<v1::Model> model;
  {
    InterruptTransfers interrupt(ctx, *session, "upload");
    model = (*session)->Upload(
        *files, input_files->model_name, labels,
        [&ctx](uint64_t done, uint64_t all) { ctx.progress().Transfer("upload", done, all); },
        &result.skipped);
  }
  if (!model.ok()) {
    ctx.progress().Finish();
    return model.status();
  }
  result.model = *std::move(model);
  const double secs = SecondsSince(start);
  if (result.skipped) {
    ctx.progress().Line(absl::StrCat("upload: skipped, the server has ", result.model.model_id()));
  } else {
    ctx.progress().EndTransfer(absl::StrCat("upload: done, ", files->size(), " file(s), ",
                                            HumanBytes(total), " in ", HumanSeconds(secs), " -> ",
                                            result.model.model_id()));
  }
  return result;
}

std::vector<PlannedFile> PlanArtifact(const v1::Artifact& artifact, const std::string& output) {
  std::vector<PlannedFile> plan;
  const std::filesystem::path out(output);
  const std::string first = artifact.files_size() > 0 ? artifact.files(0).name() : "";
  // A split GGUF model: the parts keep their "-0000i-of-0000N.gguf" tails
  // after the output's name (without .gguf), as llama.cpp finds them.
  bool split = artifact.files_size() > 1;
  for (const v1::FileInfo& f : artifact.files()) split &= !SplitTail(f.name()).empty();
  std::string split_prefix = output;
  if (absl::EndsWith(split_prefix, ".gguf")) split_prefix.resize(split_prefix.size() - 5);
  for (int i = 0; i < artifact.files_size(); ++i) {
    const v1::FileInfo& f = artifact.files(i);
    std::string path;
    if (split) {
      path = split_prefix + SplitTail(f.name());
    } else if (i == 0) {
      path = output;
    } else if (!first.empty() && absl::StartsWith(f.name(), first)) {
      path = absl::StrCat(output, f.name().substr(first.size()));
    } else {
      path = (out.parent_path() / f.name()).string();
    }
    plan.push_back({f, path});
  }
  return plan;
}

namespace {

// A folder artifact (an MLX folder): every file into "<output>.download/"
// (resumable: the parts stay there when a download breaks), then that folder
// renamed to `output`, which must be absent or an empty folder.
absl::StatusOr<std::vector<std::string>> DownloadFolderArtifact(CommandContext& ctx,
                                                                const v1::Job& job,
                                                                const std::string& output_arg) {
  std::string output = output_arg;
  while (output.size() > 1 && output.back() == '/') output.pop_back();
  std::error_code ec;
  if (std::filesystem::exists(output, ec) &&
      (!std::filesystem::is_directory(output, ec) || !std::filesystem::is_empty(output, ec))) {
    return absl::FailedPreconditionError(
        absl::StrCat(output, " exists and is not an empty folder; job ", job.job_id(),
                     "'s artifact is a folder: name a new one"));
  }
  for (const v1::FileInfo& f : job.artifact().files()) {
    if (f.name().empty() || f.name() == "." || f.name() == ".." ||
        f.name().find('/') != std::string::npos) {
      return absl::DataLossError(absl::StrCat("the server sent a bad file name '", f.name(), "'"));
    }
  }
  auto session = ctx.session();
  if (!session.ok()) return session.status();
  const std::string staging = absl::StrCat(output, ".download");
  std::filesystem::create_directories(staging, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", staging, ": ", ec.message()));
  }
  InterruptTransfers interrupt(ctx, *session, "download");
  std::vector<std::string> paths;
  for (const v1::FileInfo& f : job.artifact().files()) {
    const auto start = std::chrono::steady_clock::now();
    std::string label = absl::StrCat("download ", f.name());
    if (label.size() > 30) label = "download";
    absl::Status st = (*session)->Download(
        job.job_id(), f, (std::filesystem::path(staging) / f.name()).string(),
        [&](uint64_t done, uint64_t total) { ctx.progress().Transfer(label, done, total); });
    if (!st.ok()) {
      ctx.progress().Finish();
      return st;
    }
    const std::string path = (std::filesystem::path(output) / f.name()).string();
    ctx.progress().EndTransfer(absl::StrCat("download: ", path, " (", HumanBytes(f.size_bytes()),
                                            " in ", HumanSeconds(SecondsSince(start)),
                                            ", sha256 verified)"));
    paths.push_back(path);
  }
  // rename(2) takes the place of an empty folder, never of a non-empty one.
  if (::rename(staging.c_str(), output.c_str()) != 0 || !core::SyncParentDirectory(output).ok()) {
    return absl::DataLossError(absl::StrCat("cannot rename ", staging, " to ", output));
  }
  return paths;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> DownloadArtifact(CommandContext& ctx, const v1::Job& job,
                                                          const std::string& output_arg) {
  if (job.artifact().files_size() == 0) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job.job_id(), " has no artifact"));
  }
  if (job.artifact().folder()) return DownloadFolderArtifact(ctx, job, output_arg);
  // A directory (existing, or spelled with a trailing '/') gets the
  // artifact's own model file name.
  std::string output = output_arg;
  {
    std::error_code ec;
    if (absl::EndsWith(output, "/") || std::filesystem::is_directory(output, ec)) {
      output = (std::filesystem::path(output) / job.artifact().files(0).name()).string();
    }
  }
  auto session = ctx.session();
  if (!session.ok()) return session.status();
  std::vector<PlannedFile> plan = PlanArtifact(job.artifact(), output);
  const bool onnx = LooksOnnx(plan[0].info.name());
  std::vector<std::pair<std::string, std::string>> renamed;  // location from -> to
  for (size_t i = 1; i < plan.size(); ++i) {
    std::string new_name = std::filesystem::path(plan[i].path).filename().string();
    if (new_name != plan[i].info.name()) renamed.emplace_back(plan[i].info.name(), new_name);
  }
  InterruptTransfers interrupt(ctx, *session, "download");
  std::error_code ec;
  auto parent = std::filesystem::path(output).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  auto fetch = [&](const PlannedFile& p, const std::string& path) -> absl::Status {
    const auto start = std::chrono::steady_clock::now();
    std::string label = absl::StrCat("download ", p.info.name());
    if (label.size() > 30) label = "download";
    absl::Status st = (*session)->Download(
        job.job_id(), p.info, path,
        [&](uint64_t done, uint64_t total) { ctx.progress().Transfer(label, done, total); });
    if (!st.ok()) {
      ctx.progress().Finish();
      return st;
    }
    ctx.progress().EndTransfer(
        absl::StrCat("download: ", p.path, " (", HumanBytes(p.info.size_bytes()), " in ",
                     HumanSeconds(SecondsSince(start)), ", sha256 verified)"));
    return absl::OkStatus();
  };
  // Data files first, so the model never points at missing data.
  for (size_t i = 1; i < plan.size(); ++i) {
    if (auto st = fetch(plan[i], plan[i].path); !st.ok()) return st;
  }
  if (onnx && !renamed.empty()) {
    const std::string staging = absl::StrCat(output, ".download");
    if (auto st = fetch(plan[0], staging); !st.ok()) return st;
    for (const auto& [from, to] : renamed) {
      if (auto st = RelocateOnnxExternalData(staging, from, to); !st.ok()) return st;
    }
    if (::rename(staging.c_str(), output.c_str()) != 0 || !core::SyncParentDirectory(output).ok()) {
      return absl::DataLossError(absl::StrCat("cannot rename ", staging, " to ", output));
    }
  } else {
    if (auto st = fetch(plan[0], plan[0].path); !st.ok()) return st;
  }
  std::vector<std::string> paths;
  for (const auto& p : plan) paths.push_back(p.path);
  return paths;
}

}  // namespace quantd::quantctl
