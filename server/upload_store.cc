#include "quantd/server/upload_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

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

namespace {

constexpr char kHeader[] = "header.pb";
constexpr char kDone[] = "done.pb";
// The model record, written before the commit point and renamed to kDone
// after it.
constexpr char kDonePending[] = "done.pending";
// The first file of a Hugging Face checkpoint upload.
constexpr char kCheckpointConfig[] = "config.json";

std::string PartPath(const std::string& dir, int index) { return absl::StrCat(dir, "/f", index); }

// Where a verified upload's files are gathered before the BlobStore moves the
// directory into models/.
std::string StagingDir(const std::string& dir) { return dir + "/model"; }

// Write-back of the bytes received is started every kWriteBackStep, so the
// fsync at commit has little left to do (the disk works while bytes arrive).
constexpr uint64_t kWriteBackStep = 32ull << 20;

// True when the file starts with the GGUF magic.
bool StartsWithGguf(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char magic[4] = {};
  ssize_t n = ::pread(fd, magic, 4, 0);
  ::close(fd);
  return n == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

// Where file `name` of the upload goes in the staging directory.
std::string StagedPath(const std::string& dir, const std::string& name) {
  return absl::StrCat(StagingDir(dir), "/", name);
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// Undoes a commit that stopped before its commit point: moves files that
// reached the staging directory back to their part files and removes the
// staging directory and the pending record. Returns how many files moved.
int RestoreParts(const std::string& dir, const v1::UploadHeader& header) {
  int moved = 0;
  for (int i = 0; i < header.files_size(); ++i) {
    const std::string part = PartPath(dir, i);
    const std::string staged = StagedPath(dir, header.files(i).name());
    if (!Exists(part) && Exists(staged) && ::rename(staged.c_str(), part.c_str()) == 0) ++moved;
  }
  std::error_code ec;
  fs::remove_all(StagingDir(dir), ec);
  fs::remove(absl::StrCat(dir, "/", kDonePending), ec);
  (void)core::SyncParentDirectory(PartPath(dir, 0));
  return moved;
}

// Bytes of the upload's files present in order (a resume continues there).
uint64_t ContiguousBytes(const std::string& dir, const v1::UploadHeader& header) {
  uint64_t committed = 0;
  for (int i = 0; i < header.files_size(); ++i) {
    const uint64_t size = header.files(i).size_bytes();
    std::error_code ec;
    uint64_t have = fs::file_size(PartPath(dir, i), ec);
    if (ec) have = 0;
    have = std::min(have, size);
    committed += have;
    if (have < size) break;
  }
  return committed;
}

uint64_t DeclaredBytes(const v1::UploadHeader& header) {
  uint64_t total = 0;
  for (const auto& f : header.files()) total += f.size_bytes();
  return total;
}

}  // namespace

// ---------------------------------------------------------------- UploadWriter

// One file of the upload: the bytes received so far, in the part file
// "f<i>" of a resumable AtomicFileWriter whose final place is the staging
// directory, hashed as they arrive. The writer is open only while the file
// receives bytes, so a stream holds at most one file descriptor.
struct UploadWriter::Part {
  std::string path;                             // the part file
  std::string staged;                           // its place in the staging directory
  uint64_t size = 0;                            // declared
  uint64_t have = 0;                            // bytes in the part file
  uint64_t flushed = 0;                         // write-back started up to here
  std::unique_ptr<core::AtomicFileWriter> out;  // null unless receiving bytes
  core::Sha256 sha;
};

UploadWriter::UploadWriter(UploadStore* store, std::string upload_id, std::string dir,
                           v1::UploadHeader header)
    : store_(store),
      upload_id_(std::move(upload_id)),
      dir_(std::move(dir)),
      header_(std::move(header)) {}

UploadWriter::~UploadWriter() {
  parts_.clear();  // closes the part files, which stay for a resume
  store_->ReleaseUpload(upload_id_);
}

absl::Status UploadWriter::Prepare() {
  for (int i = 0; i < header_.files_size(); ++i) {
    auto part = std::make_unique<Part>();
    part->path = PartPath(dir_, i);
    part->staged = StagedPath(dir_, header_.files(i).name());
    part->size = header_.files(i).size_bytes();
    // Bytes must be contiguous over the files: after the first short file,
    // parts start empty. (Appends never run past a declared size, so a part
    // is never longer than its file.)
    const uint64_t keep = committed_ == total_ ? part->size : 0;
    std::error_code ec;
    uint64_t have = fs::file_size(part->path, ec);
    if (ec) have = 0;
    if (have > keep) {  // stale bytes after a gap: this file starts again
      if (::truncate(part->path.c_str(), 0) != 0) {
        return core::ErrnoToStatus(errno, "truncate", part->path);
      }
      store_->blobs_->AddUsedBytes(-static_cast<int64_t>(have));
      have = 0;
    }
    if (have > 0) QUANTD_RETURN_IF_ERROR(core::HashFilePrefix(part->path, have, &part->sha));
    part->have = have;
    part->flushed = have;
    committed_ += have;
    total_ += part->size;
    parts_.push_back(std::move(part));
  }
  return store_->SetReservation(upload_id_, total_ - committed_);
}

void UploadWriter::Discard() {
  finished_ = true;
  for (auto& p : parts_) p->out.reset();
  {
    absl::MutexLock lock(&store_->mu_);
    store_->DropReservationLocked(upload_id_);
  }
  store_->blobs_->AddUsedBytes(-static_cast<int64_t>(committed_));
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

absl::Status UploadWriter::Append(uint64_t offset, absl::string_view data) {
  if (finished_) return absl::FailedPreconditionError("upload already finished");
  if (offset != committed_) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk offset ", offset, " but the server has ", committed_,
                     " bytes; send bytes in order from GetUploadStatus().committed_bytes"));
  }
  if (data.size() > total_ - committed_) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk runs past the declared sizes (", total_, " bytes in all files)"));
  }
  for (auto& p : parts_) {
    if (data.empty()) break;
    if (p->have == p->size) continue;  // full (bytes are contiguous)
    if (p->out == nullptr) {
      auto out = core::AtomicFileWriter::OpenForResume(p->staged, p->path, p->size);
      if (!out.ok()) return out.status();
      p->out = *std::move(out);
      p->flushed = p->out->offset();
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(p->size - p->have, data.size()));
    if (absl::Status st = p->out->Write(data.data(), n); !st.ok()) {
      if (absl::IsResourceExhausted(st)) {
        // The disk (or quota) is full although the room was reserved (the
        // space went to something outside the store): drop the upload
        // rather than leave a partial no one can finish.
        Discard();
        return absl::ResourceExhaustedError(
            absl::StrCat(st.message(), "; the upload was discarded: upload it again later"));
      }
      return st;
    }
    p->sha.Update(data.data(), n);
    p->have += n;
    if (p->out->offset() - p->flushed >= kWriteBackStep) {
      p->out->StartWriteBack();
      p->flushed = p->out->offset();
    }
    if (p->have == p->size) p->out.reset();  // full: close it (kept for commit)
    committed_ += n;
    store_->blobs_->AddUsedBytes(static_cast<int64_t>(n));
    store_->ConsumeReservation(upload_id_, n);
    data.remove_prefix(n);
  }
  return absl::OkStatus();
}

absl::Status UploadWriter::Append(uint64_t offset, absl::Span<const absl::string_view> pieces) {
  for (absl::string_view piece : pieces) {
    QUANTD_RETURN_IF_ERROR(Append(offset, piece));
    offset += piece.size();
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Model> UploadWriter::Finish(const v1::UploadFinish& finish) {
  if (finished_) return absl::FailedPreconditionError("upload already finished");
  if (committed_ != total_) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload incomplete: ", committed_, " of ", total_,
                     " bytes received; resume from GetUploadStatus().committed_bytes"));
  }
  if (finish.sha256_size() != 0 && finish.sha256_size() != header_.files_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "finish has ", finish.sha256_size(), " digests for ", header_.files_size(), " files"));
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
    if (!core::IsSha256Hex(expected)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "file ", header_.files(i).name(),
          ": no valid sha256 (64 lower-case hex digits) in the header or finish message"));
    }
    std::string got = parts_[i]->sha.FinishHex();
    if (got != expected) {
      std::string name = header_.files(i).name();
      Discard();
      return absl::DataLossError(absl::StrCat(
          "file ", name, ": sha256 mismatch (expected ", expected, ", received bytes hash to ", got,
          "); the upload was discarded: re-read the file and upload it again"));
    }
    digests.push_back(got);
  }
  finished_ = true;
  return CommitModel(digests);
}

absl::StatusOr<v1::Model> UploadWriter::CommitModel(const std::vector<std::string>& digests) {
  v1::Model model;
  for (int i = 0; i < header_.files_size(); ++i) {
    v1::FileInfo* f = model.add_files();
    f->set_name(header_.files(i).name());
    f->set_size_bytes(header_.files(i).size_bytes());
    f->set_sha256(digests[i]);
  }
  model.set_model_id(ModelIdFor(model.files()));
  model.set_size_bytes(total_);
  model.set_create_time_ms(store_->clock_->NowUnixMs());
  *model.mutable_labels() = header_.labels();
  model.set_upload_id(header_.upload_id());
  model.set_model_name(header_.model_name());
  // Format: a checkpoint lists config.json first (ValidateHeader); else from
  // the first bytes of the model file.
  {
    if (header_.files(0).name() == kCheckpointConfig) {
      model.set_format(v1::MODEL_FORMAT_HF_CHECKPOINT);
    } else {
      model.set_format(StartsWithGguf(parts_[0]->path) ? v1::MODEL_FORMAT_GGUF
                                                       : v1::MODEL_FORMAT_ONNX);
    }
    if (header_.format() != v1::MODEL_FORMAT_UNSPECIFIED && header_.format() != model.format()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the header says ", v1::ModelFormat_Name(header_.format()), " but ",
                       header_.files(0).name(), " is ", v1::ModelFormat_Name(model.format())));
    }
  }
  const std::string staging = StagingDir(dir_);
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", staging, ": ", ec.message()));
  // All-or-nothing up to the commit point (the rename into models/ in
  // CommitModelDir): any failure there moves the parts back.
  absl::Status st;
  for (auto& p : parts_) {
    p->out.reset();
    // One file open at a time: fsync, rename to the staging directory.
    auto out = core::AtomicFileWriter::OpenForResume(p->staged, p->path, p->size);
    st = out.ok() ? (*out)->Commit() : out.status();
    if (st.ok()) st = store_->Fault("commit:part");
    if (!st.ok()) break;
  }
  const std::string pending = absl::StrCat(dir_, "/", kDonePending);
  if (st.ok()) st = store_->Fault("commit:record");
  if (st.ok()) st = WriteProtoFile(pending, model);
  if (st.ok()) st = store_->Fault("commit:model");
  absl::StatusOr<v1::Model> committed =
      st.ok() ? store_->blobs_->CommitModelDir(staging, model) : absl::StatusOr<v1::Model>(st);
  if (!committed.ok() && !store_->blobs_->GetModel(model.model_id()).ok()) {
    RestoreParts(dir_, header_);
    return committed.status();
  }
  // Committed (CommitModelDir may fail after its rename, e.g. on the
  // directory fsync: the model is there all the same).
  if (committed.ok()) model = *std::move(committed);
  {
    absl::MutexLock lock(&store_->mu_);
    store_->DropReservationLocked(upload_id_);
  }
  // Remember the outcome for GetUploadStatus; drop the parts. The record is
  // already written: a rename needs no new space.
  if (::rename(pending.c_str(), absl::StrCat(dir_, "/", kDone).c_str()) != 0) {
    (void)WriteProtoFile(absl::StrCat(dir_, "/", kDone), model);
  }
  for (int i = 0; i < header_.files_size(); ++i) fs::remove(PartPath(dir_, i), ec);
  store_->blobs_->AddUsedBytes(-static_cast<int64_t>(TreeBytes(staging)));
  fs::remove_all(staging, ec);
  return model;
}

// ---------------------------------------------------------------- UploadStore

UploadStore::UploadStore(BlobStore* blobs, UploadStoreOptions options, Clock* clock,
                         std::string dir)
    : blobs_(blobs), options_(std::move(options)), clock_(clock), dir_(std::move(dir)) {}

absl::StatusOr<std::unique_ptr<UploadStore>> UploadStore::Open(BlobStore* blobs,
                                                               const UploadStoreOptions& options,
                                                               Clock* clock) {
  const std::string dir = blobs->root() + "/uploads";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  std::unique_ptr<UploadStore> store(new UploadStore(blobs, options, clock, dir));
  store->Recover();
  blobs->AddUsedBytes(static_cast<int64_t>(TreeBytes(dir)));
  return store;
}

void UploadStore::Recover() {
  struct Incomplete {
    fs::file_time_type mtime;
    std::string upload_id;
    std::string dir;
    uint64_t missing = 0;
  };
  std::vector<Incomplete> incomplete;
  std::error_code ec;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir_, ec)) entries.push_back(e.path());
  for (const fs::path& path : entries) {
    const std::string dir = path.string();
    std::error_code ec2;
    auto header = ReadProtoFile<v1::UploadHeader>(absl::StrCat(dir, "/", kHeader));
    if (!fs::is_directory(path, ec2) || !header.ok() || UploadDir(header->upload_id()) != dir) {
      // A stray file, or a directory a crash left before its header was
      // written: nothing can resume it.
      fs::remove_all(path, ec2);
      ++recovery_.orphans_removed;
      continue;
    }
    const std::string pending = absl::StrCat(dir, "/", kDonePending);
    if (Exists(pending)) {
      auto record = ReadProtoFile<v1::Model>(pending);
      if (record.ok() && blobs_->GetModel(record->model_id()).ok()) {
        // Past the commit point: the model is stored; record it.
        ::rename(pending.c_str(), absl::StrCat(dir, "/", kDone).c_str());
        ++recovery_.commits_finished;
      } else {
        RestoreParts(dir, *header);
        ++recovery_.commits_undone;
      }
    }
    const bool done = Exists(absl::StrCat(dir, "/", kDone));
    if (!done && Exists(StagingDir(dir))) {
      RestoreParts(dir, *header);
      ++recovery_.commits_undone;
    }
    // Keep the header, the record and the parts; drop the rest (temp
    // files, staging leftovers, the parts of a finished upload).
    std::set<std::string> keep = {kHeader};
    if (done) {
      keep.insert(kDone);
    } else {
      for (int i = 0; i < header->files_size(); ++i) keep.insert(absl::StrCat("f", i));
    }
    std::vector<fs::path> drop;
    for (const auto& f : fs::directory_iterator(path, ec2)) {
      if (keep.count(f.path().filename().string()) == 0) drop.push_back(f.path());
    }
    for (const auto& f : drop) fs::remove_all(f, ec2);
    if (done) continue;
    Incomplete u;
    u.mtime = fs::last_write_time(path, ec2);
    for (const auto& f : fs::directory_iterator(path, ec2)) {
      std::error_code ec3;
      u.mtime = std::max(u.mtime, fs::last_write_time(f.path(), ec3));
    }
    u.upload_id = header->upload_id();
    u.dir = dir;
    u.missing = DeclaredBytes(*header) - ContiguousBytes(dir, *header);
    incomplete.push_back(std::move(u));
  }
  // Reserve the room the incomplete uploads still need, most recently
  // active first; an upload whose rest no longer fits could never finish
  // and would hold its bytes until it expires: remove it now.
  std::sort(incomplete.begin(), incomplete.end(),
            [](const Incomplete& a, const Incomplete& b) { return a.mtime > b.mtime; });
  absl::MutexLock lock(&mu_);
  for (const Incomplete& u : incomplete) {
    if (blobs_->Reserve(u.missing).ok()) {
      reservations_[u.upload_id] = u.missing;
      ++recovery_.resumable;
    } else {
      fs::remove_all(u.dir, ec);
      ++recovery_.dropped_for_room;
    }
  }
}

absl::Status UploadStore::SetReservation(const std::string& upload_id, uint64_t remaining) {
  absl::MutexLock lock(&mu_);
  uint64_t& have = reservations_[upload_id];
  if (remaining > have) {
    QUANTD_RETURN_IF_ERROR(blobs_->Reserve(remaining - have));
  } else {
    blobs_->Release(have - remaining);
  }
  have = remaining;
  return absl::OkStatus();
}

void UploadStore::ConsumeReservation(const std::string& upload_id, uint64_t n) {
  absl::MutexLock lock(&mu_);
  auto it = reservations_.find(upload_id);
  if (it == reservations_.end()) return;
  const uint64_t d = std::min(n, it->second);
  it->second -= d;
  blobs_->Release(d);
}

void UploadStore::DropReservationLocked(const std::string& upload_id) {
  auto it = reservations_.find(upload_id);
  if (it == reservations_.end()) return;
  blobs_->Release(it->second);
  reservations_.erase(it);
}

uint64_t UploadStore::ReservedFor(const std::string& upload_id) {
  absl::MutexLock lock(&mu_);
  auto it = reservations_.find(upload_id);
  return it == reservations_.end() ? 0 : it->second;
}

absl::Status UploadStore::Fault(absl::string_view step) const {
  return options_.inject_fault ? options_.inject_fault(step) : absl::OkStatus();
}

absl::Status UploadStore::AbortUpload(const std::string& upload_id) {
  QUANTD_RETURN_IF_ERROR(ValidateUploadId(upload_id));
  const std::string dir = UploadDir(upload_id);
  absl::MutexLock lock(&mu_);
  if (active_uploads_.count(upload_id) != 0) {
    return absl::AbortedError(absl::StrCat("upload ", upload_id,
                                           " is being written by a stream; end that stream "
                                           "(or wait for it to time out) and abort again"));
  }
  auto done = ReadProtoFile<v1::Model>(absl::StrCat(dir, "/", kDone));
  if (done.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload ", upload_id, " is already committed as model ", done->model_id(),
                     "; DeleteModel deletes the model"));
  }
  auto header = ReadProtoFile<v1::UploadHeader>(absl::StrCat(dir, "/", kHeader));
  if (!header.ok() || header->upload_id() != upload_id) {
    return absl::NotFoundError(absl::StrCat("no upload ", upload_id, " on this server"));
  }
  DropReservationLocked(upload_id);
  blobs_->AddUsedBytes(-static_cast<int64_t>(TreeBytes(dir)));
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

std::string UploadStore::UploadDir(const std::string& upload_id) const {
  return absl::StrCat(dir_, "/", core::Sha256Hex(upload_id).substr(0, 32));
}

void UploadStore::UseReservations(UploadReservations* reservations, std::string owner,
                                  absl::Duration ttl) {
  shared_reservations_ = reservations;
  owner_ = std::move(owner);
  reservation_ttl_ = ttl;
}

void UploadStore::ReleaseUpload(const std::string& upload_id) {
  if (shared_reservations_ != nullptr) shared_reservations_->ReleaseUpload(upload_id, owner_);
  absl::MutexLock lock(&mu_);
  active_uploads_.erase(upload_id);
}

absl::Status UploadStore::ValidateHeader(const v1::UploadHeader& header, uint64_t* total) const {
  QUANTD_RETURN_IF_ERROR(ValidateUploadId(header.upload_id()));
  if (header.files_size() == 0) {
    return absl::InvalidArgumentError("the upload header lists no files");
  }
  if (header.files_size() > 64) {
    return absl::InvalidArgumentError("a model may have at most 64 files");
  }
  std::set<std::string> names;
  *total = 0;
  for (const auto& f : header.files()) {
    QUANTD_RETURN_IF_ERROR(ValidateFileName(f.name()));
    if (!names.insert(f.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat("file name '", f.name(), "' appears twice"));
    }
    if (!f.sha256().empty() && !core::IsSha256Hex(f.sha256())) {
      return absl::InvalidArgumentError(
          absl::StrCat("file ", f.name(), ": sha256 must be 64 lower-case hex digits"));
    }
    if (f.size_bytes() > options_.max_upload_bytes)
      *total = UINT64_MAX;
    else
      *total += f.size_bytes();
  }
  const bool checkpoint = header.format() == v1::MODEL_FORMAT_HF_CHECKPOINT ||
                          header.files(0).name() == kCheckpointConfig;
  if (checkpoint && header.files(0).name() != kCheckpointConfig) {
    return absl::InvalidArgumentError(
        absl::StrCat("a Hugging Face checkpoint lists config.json first; the first file is ",
                     header.files(0).name()));
  }
  if (checkpoint && header.model_name().empty()) {
    return absl::InvalidArgumentError(
        "a Hugging Face checkpoint upload needs model_name: the folder's name, from which "
        "general.name is derived");
  }
  if (!header.model_name().empty()) {
    QUANTD_RETURN_IF_ERROR(core::ValidateModelName(header.model_name()));
  }
  if (header.files(0).size_bytes() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("file ", header.files(0).name(), " is empty; the first file is the model"));
  }
  if (*total > options_.max_upload_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the model is larger than this server's upload limit (--max-upload-bytes ",
                     options_.max_upload_bytes, ")"));
  }
  for (const auto& [k, v] : header.labels()) {
    if (k.empty() || k.size() > 63 || v.size() > 256 || header.labels_size() > 32) {
      return absl::InvalidArgumentError(
          "labels: at most 32, keys 1-63 characters, values up to 256 characters");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<UploadWriter>> UploadStore::OpenUpload(
    const v1::UploadHeader& header_in) {
  v1::UploadHeader header = header_in;
  if (header.upload_id().empty()) header.set_upload_id(RandomHex(16));
  uint64_t total = 0;
  QUANTD_RETURN_IF_ERROR(ValidateHeader(header, &total));
  const std::string dir = UploadDir(header.upload_id());
  {
    absl::MutexLock lock(&mu_);
    if (!active_uploads_.insert(header.upload_id()).second) {
      return absl::AbortedError(absl::StrCat("upload ", header.upload_id(),
                                             " is being written by another stream; wait and "
                                             "resume with GetUploadStatus"));
    }
  }
  if (shared_reservations_ != nullptr) {
    absl::Status reserved =
        shared_reservations_->ReserveUpload(header.upload_id(), owner_, reservation_ttl_);
    if (!reserved.ok()) {
      absl::MutexLock lock(&mu_);
      active_uploads_.erase(header.upload_id());
      return reserved;
    }
  }
  std::unique_ptr<UploadWriter> writer(new UploadWriter(this, header.upload_id(), dir, header));
  std::error_code ec;
  const std::string header_path = absl::StrCat(dir, "/", kHeader);
  if (fs::exists(absl::StrCat(dir, "/", kDone), ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "upload ", header.upload_id(), " is already complete; see GetUploadStatus().model_id"));
  }
  auto stored = ReadProtoFile<v1::UploadHeader>(header_path);
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
          "upload id ", header.upload_id(), " was used for different files; pick a new upload id"));
    }
  } else {
    // New upload: reserve room for the whole model now.
    QUANTD_RETURN_IF_ERROR(SetReservation(header.upload_id(), total));
    fs::create_directories(dir, ec);
    absl::Status st =
        ec ? absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()))
           : WriteProtoFile(header_path, header);
    if (!st.ok()) {
      absl::MutexLock lock(&mu_);
      DropReservationLocked(header.upload_id());
      fs::remove_all(dir, ec);
      return st;
    }
  }
  QUANTD_RETURN_IF_ERROR(writer->Prepare());
  return writer;
}

absl::StatusOr<v1::UploadStatus> UploadStore::GetUploadStatus(const std::string& upload_id) {
  QUANTD_RETURN_IF_ERROR(ValidateUploadId(upload_id));
  const std::string dir = UploadDir(upload_id);
  v1::UploadStatus status;
  status.set_upload_id(upload_id);
  auto done = ReadProtoFile<v1::Model>(absl::StrCat(dir, "/", kDone));
  if (done.ok()) {
    status.set_complete(true);
    status.set_model_id(done->model_id());
    status.set_committed_bytes(done->size_bytes());
    status.set_total_bytes(done->size_bytes());
    return status;
  }
  auto header = ReadProtoFile<v1::UploadHeader>(absl::StrCat(dir, "/", kHeader));
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
    uint64_t have = fs::file_size(PartPath(dir, i), ec);
    // During a commit the file may be in the staging directory.
    if (ec) have = fs::file_size(StagedPath(dir, header->files(i).name()), ec);
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

absl::StatusOr<v1::Model> UploadStore::FindCommittedModel(const v1::UploadHeader& header) {
  if (header.files_size() == 0) return absl::NotFoundError("no files");
  // A bad name is refused by OpenUpload, even when the files are stored.
  if (!header.model_name().empty() && !core::ValidateModelName(header.model_name()).ok()) {
    return absl::NotFoundError("invalid model name");
  }
  for (const auto& f : header.files()) {
    if (!core::IsSha256Hex(f.sha256())) return absl::NotFoundError("digests not all known");
  }
  return blobs_->GetModel(ModelIdFor(header.files()));
}

int UploadStore::ExpireUploads(int64_t max_age_ms, absl::Duration sweep_period) {
  if (shared_reservations_ != nullptr && !shared_reservations_->ClaimUploadSweep(sweep_period))
    return 0;
  const auto now = fs::file_time_type::clock::now();
  int removed = 0;
  std::error_code ec;
  std::vector<fs::path> old;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
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
    auto header = ReadProtoFile<v1::UploadHeader>((dir / kHeader).string());
    if (header.ok() && shared_reservations_ != nullptr &&
        shared_reservations_->IsUploadReserved(header->upload_id())) {
      continue;
    }
    absl::MutexLock lock(&mu_);
    if (header.ok() && active_uploads_.count(header->upload_id()) != 0) continue;
    if (header.ok()) DropReservationLocked(header->upload_id());
    blobs_->AddUsedBytes(-static_cast<int64_t>(TreeBytes(dir)));
    std::error_code ec2;
    fs::remove_all(dir, ec2);
    ++removed;
  }
  return removed;
}

}  // namespace quantd::server
