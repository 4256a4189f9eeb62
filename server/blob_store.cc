#include "quantd/server/blob_store.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/errno_status.h"
#include "quantd/core/base/sha256.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/recipe.h"
#include "quantd/server/ids.h"
#include "store_files.h"

namespace quantd::server {
namespace fs = std::filesystem;

// ---------------------------------------------------------------- ArtifactReader

ArtifactReader::~ArtifactReader() { ::close(fd_); }

absl::StatusOr<std::unique_ptr<core::MappedFile>> ArtifactReader::Map() const {
  auto mapped = core::MappedFile::Map(fd_, info_.name());
  if (mapped.ok() && (*mapped)->size() < info_.size_bytes()) {
    return absl::DataLossError(absl::StrCat("artifact file ", info_.name(), " holds ",
                                            (*mapped)->size(), " bytes; its manifest says ",
                                            info_.size_bytes()));
  }
  return mapped;
}

// ---------------------------------------------------------------- BlobStore

BlobStore::BlobStore(BlobStoreOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(const BlobStoreOptions& options) {
  for (const char* sub : {"models", "work", "artifacts"}) {
    std::error_code ec;
    fs::create_directories(fs::path(options.root) / sub, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create ", options.root, "/", sub, ": ", ec.message()));
    }
  }
  std::unique_ptr<BlobStore> store(new BlobStore(options));
  store->used_bytes_ = TreeBytes(fs::path(options.root) / "models") +
                       TreeBytes(fs::path(options.root) / "artifacts");
  return store;
}

void BlobStore::AddUsedBytes(int64_t delta) {
  if (delta >= 0) {
    used_bytes_.fetch_add(static_cast<uint64_t>(delta));
    return;
  }
  uint64_t d = static_cast<uint64_t>(-delta);
  uint64_t cur = used_bytes_.load();
  while (!used_bytes_.compare_exchange_weak(cur, cur >= d ? cur - d : 0)) {
  }
}

uint64_t BlobStore::FreeDiskBytes() const {
  struct statvfs st;
  if (::statvfs(options_.root.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

absl::Status BlobStore::CheckRoomFor(uint64_t bytes) const {
  absl::MutexLock lock(&room_mu_);
  return CheckRoomLocked(bytes);
}

absl::Status BlobStore::Reserve(uint64_t bytes) {
  absl::MutexLock lock(&room_mu_);
  QUANTD_RETURN_IF_ERROR(CheckRoomLocked(bytes));
  reserved_bytes_ += bytes;
  return absl::OkStatus();
}

void BlobStore::Release(uint64_t bytes) {
  absl::MutexLock lock(&room_mu_);
  reserved_bytes_ -= std::min(bytes, reserved_bytes_);
}

uint64_t BlobStore::reserved_bytes() const {
  absl::MutexLock lock(&room_mu_);
  return reserved_bytes_;
}

absl::Status BlobStore::CheckRoomLocked(uint64_t bytes) const {
  // Reserved bytes are promised to uploads in flight: count them as used
  // and as gone from the free disk.
  const uint64_t reserved = reserved_bytes_;
  uint64_t used = used_bytes_.load() + reserved;
  if (options_.max_store_bytes != 0 && used + bytes > options_.max_store_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the store is full (", used, " of ", options_.max_store_bytes,
        " bytes used by --max-store-bytes); delete models or jobs, or ask the operator"));
  }
  const uint64_t disk_free = FreeDiskBytes();
  const uint64_t free_bytes = disk_free > reserved ? disk_free - reserved : 0;
  if (free_bytes < bytes + options_.min_free_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("not enough free disk on the server for ", bytes, " bytes (", free_bytes,
                     " free after ", reserved, " reserved by uploads in progress, ",
                     options_.min_free_bytes, " kept in reserve by --min-free-bytes)"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- models

absl::StatusOr<v1::Model> BlobStore::CommitModelDir(const std::string& staging, v1::Model model) {
  QUANTD_ASSIGN_OR_RETURN(std::string hex, ModelHex(model.model_id()));
  const std::string final_dir = absl::StrCat(options_.root, "/models/", hex);
  // Writing the manifest fsyncs `staging` itself, so the renamed files in it
  // are durable before the directory moves into place.
  QUANTD_RETURN_IF_ERROR(WriteProtoFile(absl::StrCat(staging, "/", kManifestFileName), model));
  if (::rename(staging.c_str(), final_dir.c_str()) != 0) {
    if (errno != EEXIST && errno != ENOTEMPTY) {
      return core::ErrnoToStatus(errno, "rename", final_dir);
    }
    // Same content uploaded before: keep the existing model.
    std::error_code ec;
    fs::remove_all(staging, ec);
    AddUsedBytes(-static_cast<int64_t>(model.size_bytes()));
    auto existing = ReadProtoFile<v1::Model>(absl::StrCat(final_dir, "/", kManifestFileName));
    if (existing.ok()) model = *std::move(existing);
  }
  QUANTD_RETURN_IF_ERROR(core::SyncParentDirectory(final_dir));
  return model;
}

absl::StatusOr<v1::Model> BlobStore::GetModel(const std::string& model_id) {
  QUANTD_ASSIGN_OR_RETURN(std::string hex, ModelHex(model_id));
  auto model = ReadProtoFile<v1::Model>(
      absl::StrCat(options_.root, "/models/", hex, "/", kManifestFileName));
  if (!model.ok()) {
    if (absl::IsNotFound(model.status())) {
      return absl::NotFoundError(absl::StrCat("model ", model_id, " not found; upload it first"));
    }
    return model.status();
  }
  return model;
}

absl::StatusOr<std::string> BlobStore::ModelInputPath(const std::string& model_id) {
  QUANTD_ASSIGN_OR_RETURN(v1::Model model, GetModel(model_id));
  QUANTD_ASSIGN_OR_RETURN(std::string hex, ModelHex(model_id));
  QUANTD_RETURN_IF_ERROR(ValidateFileName(model.files(0).name()));
  return absl::StrCat(options_.root, "/models/", hex, "/", model.files(0).name());
}

absl::Status BlobStore::DeleteModel(const std::string& model_id) {
  QUANTD_ASSIGN_OR_RETURN(std::string hex, ModelHex(model_id));
  const std::string dir = absl::StrCat(options_.root, "/models/", hex);
  const std::string trash =
      absl::StrCat(options_.root, "/work/deleted-model-", hex, "-", RandomHex(4));
  if (::rename(dir.c_str(), trash.c_str()) != 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("model ", model_id, " not found"));
    return core::ErrnoToStatus(errno, "rename", dir);
  }
  (void)core::SyncParentDirectory(dir);
  AddUsedBytes(-static_cast<int64_t>(TreeBytes(trash)));
  std::error_code ec;
  fs::remove_all(trash, ec);
  return absl::OkStatus();
}

std::string WorkName(const std::string& job_id, int attempt) {
  return attempt <= 1 ? job_id : absl::StrCat(job_id, ".a", attempt);
}

namespace {

// A WorkName: a job id, optionally ".a<N>". Returns the job id.
absl::StatusOr<std::string> ValidateWorkName(absl::string_view work_name) {
  const size_t dot = work_name.find('.');
  const absl::string_view job_id = work_name.substr(0, dot);
  QUANTD_RETURN_IF_ERROR(ValidateJobId(job_id));
  if (dot != absl::string_view::npos) {
    const absl::string_view attempt = work_name.substr(dot + 1);
    int n = 0;
    if (attempt.size() < 2 || attempt[0] != 'a' ||
        attempt.find_first_not_of("0123456789", 1) != absl::string_view::npos ||
        !absl::SimpleAtoi(attempt.substr(1), &n) || n < 2) {
      return absl::InvalidArgumentError("work directory name is not <job id>[.a<attempt>]");
    }
  }
  return std::string(job_id);
}

}  // namespace

absl::StatusOr<std::string> BlobStore::LinkModelFolder(const std::string& model_id,
                                                       const std::string& work_name,
                                                       const std::string& name) {
  QUANTD_RETURN_IF_ERROR(ValidateWorkName(work_name).status());
  QUANTD_RETURN_IF_ERROR(core::ValidateModelName(name));
  QUANTD_ASSIGN_OR_RETURN(v1::Model model, GetModel(model_id));
  QUANTD_ASSIGN_OR_RETURN(std::string hex, ModelHex(model_id));
  const std::string input = absl::StrCat(options_.root, "/work/", work_name, ".input");
  const std::string folder = absl::StrCat(input, "/", name);
  std::error_code ec;
  fs::remove_all(input, ec);
  fs::create_directories(folder, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", folder, ": ", ec.message()));
  for (const v1::FileInfo& f : model.files()) {
    QUANTD_RETURN_IF_ERROR(ValidateFileName(f.name()));
    // Relative (work/<job>.input/<name>/ -> models/<hex>/), so the link
    // holds whatever path the data directory is reached by.
    const std::string target = absl::StrCat("../../../models/", hex, "/", f.name());
    const std::string link = absl::StrCat(folder, "/", f.name());
    if (::symlink(target.c_str(), link.c_str()) != 0) {
      return core::ErrnoToStatus(errno, "symlink", link);
    }
  }
  return folder;
}

// ---------------------------------------------------------------- artifacts

absl::StatusOr<std::string> BlobStore::CreateWorkDir(const std::string& work_name) {
  QUANTD_RETURN_IF_ERROR(ValidateWorkName(work_name).status());
  const std::string dir = absl::StrCat(options_.root, "/work/", work_name);
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  return dir;
}

void BlobStore::RemoveWorkDir(const std::string& work_name) {
  if (!ValidateWorkName(work_name).ok()) return;
  std::error_code ec;
  fs::remove_all(absl::StrCat(options_.root, "/work/", work_name), ec);
  fs::remove_all(absl::StrCat(options_.root, "/work/", work_name, ".input"), ec);
}

absl::StatusOr<v1::Artifact> BlobStore::CommitArtifact(const std::string& work_name,
                                                       const std::vector<std::string>& file_names,
                                                       const core::OutputDigests* written) {
  QUANTD_ASSIGN_OR_RETURN(const std::string job_id, ValidateWorkName(work_name));
  const std::string work = absl::StrCat(options_.root, "/work/", work_name);
  const std::string final_dir = absl::StrCat(options_.root, "/artifacts/", job_id);
  v1::Artifact artifact;
  uint64_t total = 0;
  for (const std::string& name : file_names) {
    QUANTD_RETURN_IF_ERROR(ValidateFileName(name));
    const std::string path = absl::StrCat(work, "/", name);
    std::error_code ec;
    uint64_t size = fs::file_size(path, ec);
    if (ec) return absl::InternalError(absl::StrCat("output ", name, " missing: ", ec.message()));
    std::optional<core::OutputDigests::Digest> known;
    if (written != nullptr) known = written->Find(name);
    std::string digest;
    if (known.has_value() && known->size == size) {
      digest = std::move(known->sha256);  // hashed while written: no read back
    } else {
      QUANTD_ASSIGN_OR_RETURN(digest, core::Sha256File(path));
    }
    v1::FileInfo* f = artifact.add_files();
    f->set_name(name);
    f->set_size_bytes(size);
    f->set_sha256(digest);
    total += size;
  }
  artifact.set_size_bytes(total);
  QUANTD_RETURN_IF_ERROR(WriteProtoFile(absl::StrCat(work, "/", kManifestFileName), artifact));
  std::error_code ec;
  fs::remove_all(final_dir, ec);
  if (::rename(work.c_str(), final_dir.c_str()) != 0) {
    return core::ErrnoToStatus(errno, "rename", final_dir);
  }
  QUANTD_RETURN_IF_ERROR(core::SyncParentDirectory(final_dir));
  AddUsedBytes(static_cast<int64_t>(total));
  return artifact;
}

absl::StatusOr<std::unique_ptr<ArtifactReader>> BlobStore::OpenArtifactFile(
    const std::string& job_id, const std::string& name) {
  QUANTD_RETURN_IF_ERROR(ValidateJobId(job_id));
  const std::string dir = absl::StrCat(options_.root, "/artifacts/", job_id);
  auto artifact = ReadProtoFile<v1::Artifact>(absl::StrCat(dir, "/", kManifestFileName));
  if (!artifact.ok()) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " has no artifact"));
  }
  for (const auto& f : artifact->files()) {
    if (!name.empty() && f.name() != name) continue;
    QUANTD_RETURN_IF_ERROR(ValidateFileName(f.name()));
    const std::string path = absl::StrCat(dir, "/", f.name());
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return core::ErrnoToStatus(errno, "open", path);
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);  // read front to back
    return std::unique_ptr<ArtifactReader>(new ArtifactReader(fd, f));
  }
  return absl::NotFoundError(
      absl::StrCat("job ", job_id, " has no artifact file named '", name, "'"));
}

absl::Status BlobStore::DeleteArtifact(const std::string& job_id) {
  QUANTD_RETURN_IF_ERROR(ValidateJobId(job_id));
  const std::string dir = absl::StrCat(options_.root, "/artifacts/", job_id);
  std::error_code ec;
  if (!fs::exists(dir, ec)) return absl::OkStatus();
  AddUsedBytes(-static_cast<int64_t>(TreeBytes(dir)));
  fs::remove_all(dir, ec);
  (void)core::SyncParentDirectory(dir);
  return absl::OkStatus();
}

void BlobStore::CleanupAfterRestart(const std::function<bool(const std::string&)>& keep) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(options_.root) / "work", ec)) {
    std::error_code ec2;
    fs::remove_all(e.path(), ec2);
  }
  std::vector<fs::path> drop;
  for (const auto& e : fs::directory_iterator(fs::path(options_.root) / "artifacts", ec)) {
    std::string id = e.path().filename().string();
    if (!keep(id)) drop.push_back(e.path());
  }
  for (const auto& p : drop) {
    AddUsedBytes(-static_cast<int64_t>(TreeBytes(p)));
    std::error_code ec2;
    fs::remove_all(p, ec2);
  }
}

}  // namespace quantd::server
