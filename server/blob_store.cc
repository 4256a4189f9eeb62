#include "quantd/server/blob_store.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/server/digest.h"

namespace quantd::server {
namespace fs = std::filesystem;

namespace {

constexpr char kManifest[] = "manifest.pb";
constexpr char kHeader[] = "header.pb";
constexpr char kDone[] = "done.pb";

absl::Status ErrnoStatus(absl::string_view what, const std::string& path, int e) {
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(e));
  if (e == ENOSPC || e == EDQUOT) return absl::ResourceExhaustedError(msg);
  if (e == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

absl::Status WriteProto(const std::string& path, const google::protobuf::MessageLite& msg) {
  std::string bytes = msg.SerializeAsString();
  return core::WriteFileAtomically(
      path, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()),
                                      bytes.size()));
}

template <typename Msg>
absl::StatusOr<Msg> ReadProto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": not found"));
  std::stringstream ss;
  ss << in.rdbuf();
  Msg msg;
  if (!msg.ParseFromString(ss.str())) {
    return absl::DataLossError(absl::StrCat(path, ": unreadable metadata"));
  }
  return msg;
}

uint64_t TreeBytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)) total += it->file_size(ec2);
  }
  return total;
}

absl::Status Fsync(int fd, const std::string& path) {
  if (::fsync(fd) != 0) return ErrnoStatus("fsync", path, errno);
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------- UploadWriter

struct UploadWriter::Part {
  std::string path;
  uint64_t size = 0;       // declared
  uint64_t written = 0;    // on disk
  uint64_t flushed = 0;    // write-back started up to here
  int fd = -1;
  Sha256 sha;
};

namespace {
// Starts write-back of every full 32 MiB written since the last call, so the
// fsync at commit has little left to do (the disk works while bytes arrive).
void StartWriteBack(int fd, uint64_t written, uint64_t* flushed) {
  constexpr uint64_t kStep = 32ull << 20;
  if (written - *flushed < kStep) return;
  uint64_t len = (written - *flushed) / kStep * kStep;
  ::sync_file_range(fd, static_cast<off64_t>(*flushed), static_cast<off64_t>(len),
                    SYNC_FILE_RANGE_WRITE);
  *flushed += len;
}
}  // namespace

UploadWriter::UploadWriter(BlobStore* store, std::string upload_id, std::string dir,
                           v1::UploadHeader header)
    : store_(store), upload_id_(std::move(upload_id)), dir_(std::move(dir)),
      header_(std::move(header)) {}

UploadWriter::~UploadWriter() {
  for (auto& p : parts_) {
    if (p->fd >= 0) ::close(p->fd);
  }
  store_->ReleaseUpload(upload_id_);
}

absl::Status UploadWriter::Prepare() {
  for (int i = 0; i < header_.files_size(); ++i) {
    auto part = std::make_unique<Part>();
    part->path = absl::StrCat(dir_, "/f", i);
    part->size = header_.files(i).size_bytes();
    part->fd = ::open(part->path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (part->fd < 0) return ErrnoStatus("open", part->path, errno);
    off_t end = ::lseek(part->fd, 0, SEEK_END);
    if (end < 0) return ErrnoStatus("seek", part->path, errno);
    uint64_t have = static_cast<uint64_t>(end);
    if (have > part->size) {
      if (::ftruncate(part->fd, static_cast<off_t>(part->size)) != 0) {
        return ErrnoStatus("truncate", part->path, errno);
      }
      have = part->size;
    }
    // Bytes must be contiguous over the files: stop at the first short file.
    if (committed_ != total_) {
      if (have != 0 && ::ftruncate(part->fd, 0) != 0) {
        return ErrnoStatus("truncate", part->path, errno);
      }
      have = 0;
    }
    if (have > 0) QUANTD_RETURN_IF_ERROR(HashFilePrefix(part->path, have, &part->sha));
    if (::lseek(part->fd, static_cast<off_t>(have), SEEK_SET) < 0) {
      return ErrnoStatus("seek", part->path, errno);
    }
    part->written = have;
    part->flushed = have;
    committed_ += have;
    total_ += part->size;
    parts_.push_back(std::move(part));
  }
  return absl::OkStatus();
}

absl::Status UploadWriter::Append(uint64_t offset, absl::string_view data) {
  if (finished_) return absl::FailedPreconditionError("upload already finished");
  if (offset != committed_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk offset ", offset, " but the server has ", committed_,
        " bytes; send bytes in order from GetUploadStatus().committed_bytes"));
  }
  if (data.size() > total_ - committed_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk runs past the declared sizes (", total_, " bytes in all files)"));
  }
  uint64_t pos = 0;
  for (auto& p : parts_) {
    if (data.empty()) break;
    if (pos + p->size <= committed_) {
      pos += p->size;
      continue;
    }
    uint64_t room = p->size - p->written;
    size_t n = static_cast<size_t>(std::min<uint64_t>(room, data.size()));
    const char* src = data.data();
    size_t left = n;
    while (left > 0) {
      ssize_t w = ::write(p->fd, src, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write", p->path, errno);
      }
      src += w;
      left -= static_cast<size_t>(w);
    }
    p->sha.Update(data.data(), n);
    p->written += n;
    StartWriteBack(p->fd, p->written, &p->flushed);
    committed_ += n;
    store_->AddUsed(static_cast<int64_t>(n));
    data.remove_prefix(n);
    pos += p->size;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Model> UploadWriter::Finish(const v1::UploadFinish& finish) {
  if (finished_) return absl::FailedPreconditionError("upload already finished");
  if (committed_ != total_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "upload incomplete: ", committed_, " of ", total_,
        " bytes received; resume from GetUploadStatus().committed_bytes"));
  }
  if (finish.sha256_size() != 0 && finish.sha256_size() != header_.files_size()) {
    return absl::InvalidArgumentError(absl::StrCat("finish has ", finish.sha256_size(),
                                                   " digests for ", header_.files_size(),
                                                   " files"));
  }
  std::vector<std::string> digests;
  for (int i = 0; i < header_.files_size(); ++i) {
    std::string expected = header_.files(i).sha256();
    if (finish.sha256_size() > 0 && !finish.sha256(i).empty()) {
      if (!expected.empty() && expected != finish.sha256(i)) {
        return absl::InvalidArgumentError(
            absl::StrCat("file ", header_.files(i).name(),
                         ": the header and finish messages give different sha256"));
      }
      expected = finish.sha256(i);
    }
    if (!IsSha256Hex(expected)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "file ", header_.files(i).name(),
          ": no valid sha256 (64 lower-case hex digits) in the header or finish message"));
    }
    std::string got = parts_[i]->sha.FinishHex();
    if (got != expected) {
      finished_ = true;
      std::string name = header_.files(i).name();
      for (auto& p : parts_) {
        ::close(p->fd);
        p->fd = -1;
      }
      store_->AddUsed(-static_cast<int64_t>(committed_));
      std::error_code ec;
      fs::remove_all(dir_, ec);
      return absl::DataLossError(absl::StrCat(
          "file ", name, ": sha256 mismatch (expected ", expected, ", received bytes hash to ",
          got, "); the upload was discarded: re-read the file and upload it again"));
    }
    digests.push_back(got);
  }
  for (auto& p : parts_) QUANTD_RETURN_IF_ERROR(Fsync(p->fd, p->path));
  finished_ = true;
  return store_->CommitModel(this, digests);
}

// ---------------------------------------------------------------- ArtifactReader

ArtifactReader::~ArtifactReader() { ::close(fd_); }

absl::Status ArtifactReader::ReadAt(uint64_t offset, size_t max, std::string* out) {
  out->resize(max);
  size_t got = 0;
  while (got < max) {
    ssize_t n = ::pread(fd_, out->data() + got, max - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", info_.name(), errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out->resize(got);
  return absl::OkStatus();
}

// ---------------------------------------------------------------- BlobStore

BlobStore::BlobStore(BlobStoreOptions options, Clock* clock)
    : options_(std::move(options)), clock_(clock) {}

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(const BlobStoreOptions& options,
                                                          Clock* clock) {
  for (const char* sub : {"uploads", "models", "work", "artifacts"}) {
    std::error_code ec;
    fs::create_directories(fs::path(options.root) / sub, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create ", options.root, "/", sub, ": ", ec.message()));
    }
  }
  std::unique_ptr<BlobStore> store(new BlobStore(options, clock));
  store->used_bytes_ = TreeBytes(fs::path(options.root) / "uploads") +
                       TreeBytes(fs::path(options.root) / "models") +
                       TreeBytes(fs::path(options.root) / "artifacts");
  return store;
}

void BlobStore::AddUsed(int64_t delta) {
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

absl::Status BlobStore::ValidateFileName(absl::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("file name '", name, "' must have 1 to 128 characters"));
  }
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
  };
  bool alnum_first = (name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
                     (name[0] >= '0' && name[0] <= '9');
  for (char c : name) {
    if (!ok_char(c) || !alnum_first) {
      return absl::InvalidArgumentError(absl::StrCat(
          "file name '", name,
          "' is not a plain name: use letters, digits, '.', '_' and '-', starting with a "
          "letter or digit, no directories"));
    }
  }
  if (absl::EndsWith(name, ".tmp") || absl::StrContains(name, ".tmp-") || name == kManifest) {
    return absl::InvalidArgumentError(absl::StrCat("file name '", name, "' is reserved"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BlobStore::ModelHex(absl::string_view model_id) {
  if (!absl::StartsWith(model_id, "sha256:") || !IsSha256Hex(model_id.substr(7))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model id '", model_id, "' is malformed; expected sha256:<64 lower-case hex digits>"));
  }
  return std::string(model_id.substr(7));
}

absl::Status BlobStore::ValidateJobId(absl::string_view job_id) {
  bool ok = job_id.size() == 24 && absl::StartsWith(job_id, "job_");
  for (size_t i = 4; ok && i < job_id.size(); ++i) {
    char c = job_id[i];
    ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("job id '", job_id, "' is malformed; expected job_<20 hex digits>"));
  }
  return absl::OkStatus();
}

absl::Status BlobStore::ValidateUploadId(absl::string_view id) {
  bool ok = id.size() >= 8 && id.size() <= 64;
  for (char c : id) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "upload id '", id, "' is malformed; use 8 to 64 characters [A-Za-z0-9_-]"));
  }
  return absl::OkStatus();
}

std::string BlobStore::UploadDir(const std::string& upload_id) const {
  return absl::StrCat(options_.root, "/uploads/", Sha256Hex(upload_id).substr(0, 32));
}

void BlobStore::ReleaseUpload(const std::string& upload_id) {
  absl::MutexLock lock(&mu_);
  active_uploads_.erase(upload_id);
}

absl::StatusOr<std::unique_ptr<UploadWriter>> BlobStore::OpenUpload(
    const v1::UploadHeader& header_in) {
  v1::UploadHeader header = header_in;
  if (header.upload_id().empty()) header.set_upload_id(RandomHex(16));
  QUANTD_RETURN_IF_ERROR(ValidateUploadId(header.upload_id()));
  if (header.files_size() == 0) {
    return absl::InvalidArgumentError("the upload header lists no files");
  }
  if (header.files_size() > 64) {
    return absl::InvalidArgumentError("a model may have at most 64 files");
  }
  std::set<std::string> names;
  uint64_t total = 0;
  for (const auto& f : header.files()) {
    QUANTD_RETURN_IF_ERROR(ValidateFileName(f.name()));
    if (!names.insert(f.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat("file name '", f.name(), "' appears twice"));
    }
    if (!f.sha256().empty() && !IsSha256Hex(f.sha256())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "file ", f.name(), ": sha256 must be 64 lower-case hex digits"));
    }
    if (f.size_bytes() > options_.max_upload_bytes) total = UINT64_MAX;
    else total += f.size_bytes();
  }
  if (header.files(0).size_bytes() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("file ", header.files(0).name(), " is empty; the first file is the model"));
  }
  if (total > options_.max_upload_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the model is larger than this server's upload limit (--max-upload-bytes ",
        options_.max_upload_bytes, ")"));
  }
  for (const auto& [k, v] : header.labels()) {
    if (k.empty() || k.size() > 63 || v.size() > 256 || header.labels_size() > 32) {
      return absl::InvalidArgumentError(
          "labels: at most 32, keys 1-63 characters, values up to 256 characters");
    }
  }
  const std::string dir = UploadDir(header.upload_id());
  {
    absl::MutexLock lock(&mu_);
    if (!active_uploads_.insert(header.upload_id()).second) {
      return absl::AbortedError(absl::StrCat("upload ", header.upload_id(),
                                             " is being written by another stream; wait and "
                                             "resume with GetUploadStatus"));
    }
  }
  std::unique_ptr<UploadWriter> writer(new UploadWriter(this, header.upload_id(), dir, header));
  std::error_code ec;
  const std::string header_path = dir + "/" + kHeader;
  if (fs::exists(dir + "/" + kDone, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "upload ", header.upload_id(), " is already complete; see GetUploadStatus().model_id"));
  }
  auto stored = ReadProto<v1::UploadHeader>(header_path);
  if (stored.ok()) {
    bool same = stored->files_size() == header.files_size();
    for (int i = 0; same && i < header.files_size(); ++i) {
      const auto& a = stored->files(i);
      const auto& b = header.files(i);
      same = a.name() == b.name() && a.size_bytes() == b.size_bytes() &&
             (a.sha256().empty() || b.sha256().empty() || a.sha256() == b.sha256());
    }
    if (!same) {
      return absl::InvalidArgumentError(absl::StrCat(
          "upload id ", header.upload_id(),
          " was used for different files; pick a new upload id"));
    }
  } else {
    // New upload: check the limits for the whole model now.
    uint64_t used = used_bytes_.load();
    if (options_.max_store_bytes != 0 && used + total > options_.max_store_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the store is full (", used, " of ", options_.max_store_bytes,
          " bytes used by --max-store-bytes); delete models or jobs, or ask the operator"));
    }
    uint64_t free_bytes = FreeDiskBytes();
    if (free_bytes < total + options_.min_free_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "not enough free disk on the server for ", total, " bytes (", free_bytes,
          " free, ", options_.min_free_bytes, " kept in reserve by --min-free-bytes)"));
    }
    fs::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
    QUANTD_RETURN_IF_ERROR(WriteProto(header_path, header));
  }
  QUANTD_RETURN_IF_ERROR(writer->Prepare());
  return writer;
}

absl::StatusOr<v1::UploadStatus> BlobStore::GetUploadStatus(const std::string& upload_id) {
  QUANTD_RETURN_IF_ERROR(ValidateUploadId(upload_id));
  const std::string dir = UploadDir(upload_id);
  v1::UploadStatus status;
  status.set_upload_id(upload_id);
  auto done = ReadProto<v1::Model>(dir + "/" + kDone);
  if (done.ok()) {
    status.set_complete(true);
    status.set_model_id(done->model_id());
    status.set_committed_bytes(done->size_bytes());
    status.set_total_bytes(done->size_bytes());
    return status;
  }
  auto header = ReadProto<v1::UploadHeader>(dir + "/" + kHeader);
  if (!header.ok() || header->upload_id() != upload_id) {
    return absl::NotFoundError(
        absl::StrCat("no upload ", upload_id, " on this server; start a new upload"));
  }
  uint64_t committed = 0;
  uint64_t total = 0;
  bool contiguous = true;
  for (int i = 0; i < header->files_size(); ++i) {
    uint64_t size = header->files(i).size_bytes();
    std::error_code ec;
    uint64_t have = fs::file_size(absl::StrCat(dir, "/f", i), ec);
    if (ec) have = 0;
    have = std::min(have, size);
    if (contiguous) committed += have;
    if (have < size) contiguous = false;
    total += size;
  }
  status.set_committed_bytes(committed);
  status.set_total_bytes(total);
  return status;
}

std::string BlobStore::ModelIdFor(const google::protobuf::RepeatedPtrField<v1::FileInfo>& files) {
  // The model's identity: its files' names, sizes and digests. The exact text
  // is an API contract (see Model.model_id in quantd.proto; clients compute it).
  std::string identity = "quantd-model-v1\n";
  for (const v1::FileInfo& f : files) {
    absl::StrAppend(&identity, f.name(), "\n", f.size_bytes(), "\n", f.sha256(), "\n");
  }
  return absl::StrCat("sha256:", Sha256Hex(identity));
}

absl::StatusOr<v1::Model> BlobStore::FindCommittedModel(const v1::UploadHeader& header) {
  if (header.files_size() == 0) return absl::NotFoundError("no files");
  for (const auto& f : header.files()) {
    if (!IsSha256Hex(f.sha256())) return absl::NotFoundError("digests not all known");
  }
  return GetModel(ModelIdFor(header.files()));
}

absl::StatusOr<v1::Model> BlobStore::CommitModel(UploadWriter* w,
                                                 const std::vector<std::string>& digests) {
  const v1::UploadHeader& header = w->header_;
  v1::Model model;
  for (int i = 0; i < header.files_size(); ++i) {
    v1::FileInfo* f = model.add_files();
    f->set_name(header.files(i).name());
    f->set_size_bytes(header.files(i).size_bytes());
    f->set_sha256(digests[i]);
  }
  model.set_model_id(ModelIdFor(model.files()));
  const std::string hex = model.model_id().substr(7);
  model.set_size_bytes(w->total_);
  model.set_create_time_ms(clock_->NowUnixMs());
  *model.mutable_labels() = header.labels();
  model.set_upload_id(header.upload_id());
  // Format from the first bytes of the model file.
  {
    char magic[4] = {};
    ssize_t n = ::pread(w->parts_[0]->fd, magic, 4, 0);
    bool gguf = n == 4 && std::memcmp(magic, "GGUF", 4) == 0;
    model.set_format(gguf ? v1::MODEL_FORMAT_GGUF : v1::MODEL_FORMAT_ONNX);
    if (header.format() != v1::MODEL_FORMAT_UNSPECIFIED && header.format() != model.format()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the header says ", v1::ModelFormat_Name(header.format()), " but ",
          header.files(0).name(), " is ", v1::ModelFormat_Name(model.format())));
    }
  }
  const std::string staging = w->dir_ + "/model";
  const std::string final_dir = absl::StrCat(options_.root, "/models/", hex);
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", staging, ": ", ec.message()));
  for (int i = 0; i < header.files_size(); ++i) {
    std::string to = absl::StrCat(staging, "/", header.files(i).name());
    if (::rename(w->parts_[i]->path.c_str(), to.c_str()) != 0) {
      return ErrnoStatus("rename", to, errno);
    }
  }
  QUANTD_RETURN_IF_ERROR(WriteProto(staging + "/" + kManifest, model));  // fsyncs staging/
  if (::rename(staging.c_str(), final_dir.c_str()) != 0) {
    if (errno != EEXIST && errno != ENOTEMPTY) return ErrnoStatus("rename", final_dir, errno);
    // Same content uploaded before: keep the existing model.
    fs::remove_all(staging, ec);
    AddUsed(-static_cast<int64_t>(w->total_));
    auto existing = ReadProto<v1::Model>(final_dir + "/" + kManifest);
    if (existing.ok()) model = *std::move(existing);
  }
  QUANTD_RETURN_IF_ERROR(core::SyncParentDirectory(final_dir));
  // Remember the outcome for GetUploadStatus; drop the parts.
  QUANTD_RETURN_IF_ERROR(WriteProto(w->dir_ + "/" + kDone, model));
  for (int i = 0; i < header.files_size(); ++i) {
    fs::remove(absl::StrCat(w->dir_, "/f", i), ec);
  }
  return model;
}

absl::StatusOr<v1::Model> BlobStore::GetModel(const std::string& model_id) {
  QUANTD_ASSIGN_OR_RETURN(std::string hex, ModelHex(model_id));
  auto model = ReadProto<v1::Model>(absl::StrCat(options_.root, "/models/", hex, "/", kManifest));
  if (!model.ok()) {
    if (absl::IsNotFound(model.status())) {
      return absl::NotFoundError(
          absl::StrCat("model ", model_id, " not found; upload it first"));
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
  const std::string trash = absl::StrCat(options_.root, "/work/deleted-model-", hex, "-",
                                         RandomHex(4));
  if (::rename(dir.c_str(), trash.c_str()) != 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("model ", model_id, " not found"));
    return ErrnoStatus("rename", dir, errno);
  }
  (void)core::SyncParentDirectory(dir);
  AddUsed(-static_cast<int64_t>(TreeBytes(trash)));
  std::error_code ec;
  fs::remove_all(trash, ec);
  return absl::OkStatus();
}

absl::StatusOr<std::string> BlobStore::CreateWorkDir(const std::string& job_id) {
  QUANTD_RETURN_IF_ERROR(ValidateJobId(job_id));
  const std::string dir = absl::StrCat(options_.root, "/work/", job_id);
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  return dir;
}

void BlobStore::RemoveWorkDir(const std::string& job_id) {
  if (!ValidateJobId(job_id).ok()) return;
  std::error_code ec;
  fs::remove_all(absl::StrCat(options_.root, "/work/", job_id), ec);
}

absl::StatusOr<v1::Artifact> BlobStore::CommitArtifact(
    const std::string& job_id, const std::vector<std::string>& file_names) {
  QUANTD_RETURN_IF_ERROR(ValidateJobId(job_id));
  const std::string work = absl::StrCat(options_.root, "/work/", job_id);
  const std::string final_dir = absl::StrCat(options_.root, "/artifacts/", job_id);
  v1::Artifact artifact;
  uint64_t total = 0;
  for (const std::string& name : file_names) {
    QUANTD_RETURN_IF_ERROR(ValidateFileName(name));
    const std::string path = absl::StrCat(work, "/", name);
    std::error_code ec;
    uint64_t size = fs::file_size(path, ec);
    if (ec) return absl::InternalError(absl::StrCat("output ", name, " missing: ", ec.message()));
    QUANTD_ASSIGN_OR_RETURN(std::string digest, Sha256File(path));
    v1::FileInfo* f = artifact.add_files();
    f->set_name(name);
    f->set_size_bytes(size);
    f->set_sha256(digest);
    total += size;
  }
  artifact.set_size_bytes(total);
  QUANTD_RETURN_IF_ERROR(WriteProto(work + "/" + kManifest, artifact));
  std::error_code ec;
  fs::remove_all(final_dir, ec);
  if (::rename(work.c_str(), final_dir.c_str()) != 0) return ErrnoStatus("rename", final_dir, errno);
  QUANTD_RETURN_IF_ERROR(core::SyncParentDirectory(final_dir));
  AddUsed(static_cast<int64_t>(total));
  return artifact;
}

absl::StatusOr<std::unique_ptr<ArtifactReader>> BlobStore::OpenArtifactFile(
    const std::string& job_id, const std::string& name) {
  QUANTD_RETURN_IF_ERROR(ValidateJobId(job_id));
  const std::string dir = absl::StrCat(options_.root, "/artifacts/", job_id);
  auto artifact = ReadProto<v1::Artifact>(dir + "/" + kManifest);
  if (!artifact.ok()) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " has no artifact"));
  }
  for (const auto& f : artifact->files()) {
    if (!name.empty() && f.name() != name) continue;
    QUANTD_RETURN_IF_ERROR(ValidateFileName(f.name()));
    const std::string path = absl::StrCat(dir, "/", f.name());
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
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
  AddUsed(-static_cast<int64_t>(TreeBytes(dir)));
  fs::remove_all(dir, ec);
  (void)core::SyncParentDirectory(dir);
  return absl::OkStatus();
}

int BlobStore::ExpireUploads(int64_t max_age_ms) {
  const auto now = fs::file_time_type::clock::now();
  int removed = 0;
  std::error_code ec;
  std::vector<fs::path> old;
  for (const auto& e : fs::directory_iterator(fs::path(options_.root) / "uploads", ec)) {
    std::error_code ec2;
    auto mtime = fs::last_write_time(e.path(), ec2);
    // A directory's mtime moves when parts are created/renamed; parts' own
    // mtimes move with every write.
    for (const auto& f : fs::directory_iterator(e.path(), ec2)) {
      std::error_code ec3;
      mtime = std::max(mtime, fs::last_write_time(f.path(), ec3));
    }
    if (ec2) continue;
    auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - mtime).count();
    if (age > max_age_ms) old.push_back(e.path());
  }
  for (const auto& dir : old) {
    auto header = ReadProto<v1::UploadHeader>((dir / kHeader).string());
    absl::MutexLock lock(&mu_);
    if (header.ok() && active_uploads_.count(header->upload_id()) != 0) continue;
    AddUsed(-static_cast<int64_t>(TreeBytes(dir)));
    std::error_code ec2;
    fs::remove_all(dir, ec2);
    ++removed;
  }
  return removed;
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
    AddUsed(-static_cast<int64_t>(TreeBytes(p)));
    std::error_code ec2;
    fs::remove_all(p, ec2);
  }
}

}  // namespace quantd::server
