// BlobStore: the service's committed content on local disk — models
// (content-addressed) and job artifacts — and the byte accounting and
// capacity checks for the whole data directory. Uploads in flight live in
// the UploadStore (upload_store.h), which commits finished uploads here.
//
// Layout under `root` (every path is built from server-made values only:
// hex digests, server job ids, and file names that passed ValidateFileName,
// see ids.h):
//   models/<model hex>/manifest.pb + the model's files          committed models
//   work/<work name>/                                           job output in progress
//   work/<work name>.input/<model name>/ -> models/<hex>/*      a checkpoint as a folder
//   artifacts/<job id>/manifest.pb + files                      finished artifacts
// Commits are atomic: files are fsynced, a directory is filled beside its
// final place and renamed into it, and the parent directory is fsynced. A
// crash leaves either no model/artifact or the complete one.
//
// Thread safety: all methods are thread-safe.
#ifndef QUANTD_SERVER_BLOB_STORE_H_
#define QUANTD_SERVER_BLOB_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "quantd/core/base/mapped_file.h"
#include "quantd/core/base/output_digests.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::server {

// The work directory name of a job's attempt: the job id for the first
// attempt, "<job id>.a<N>" for attempt N > 1. With a job store shared by
// replicas, a replica that lost its lease (paused, cut off) and the one
// that took the job over run different attempts, so one never writes into,
// removes or commits the other's directory.
std::string WorkName(const std::string& job_id, int attempt);

struct BlobStoreOptions {
  std::string root;                        // the data directory
  uint64_t max_store_bytes = 0;            // models+artifacts+uploads; 0: no limit
  uint64_t min_free_bytes = 256ull << 20;  // keep this much disk free
};

// An artifact file opened for reading.
// Thread safety: Map may be called from any thread.
class ArtifactReader {
 public:
  ~ArtifactReader();
  ArtifactReader(const ArtifactReader&) = delete;
  ArtifactReader& operator=(const ArtifactReader&) = delete;
  const v1::FileInfo& info() const { return info_; }
  // The whole file mapped read-only, for sending its bytes without copying
  // them: only the kernel should read the mapping (a socket write), so that
  // a file cut short under it fails that write (EFAULT) instead of
  // faulting the server. DataLoss when the file is shorter than info().
  absl::StatusOr<std::unique_ptr<core::MappedFile>> Map() const;

 private:
  friend class BlobStore;
  ArtifactReader(int fd, v1::FileInfo info) : fd_(fd), info_(std::move(info)) {}
  const int fd_;  // owned
  const v1::FileInfo info_;
};

class BlobStore {
 public:
  // Creates the directories under options.root if needed and counts the
  // bytes already stored there.
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(const BlobStoreOptions& options);
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;

  // --- models ---
  absl::StatusOr<v1::Model> GetModel(const std::string& model_id);
  // Path of the model's first file, for the core. NotFound if deleted.
  absl::StatusOr<std::string> ModelInputPath(const std::string& model_id);
  absl::Status DeleteModel(const std::string& model_id);
  // Commits `model` whose files (and nothing else) are in `staging_dir`, a
  // directory on the same file system whose files are fsynced: writes the
  // manifest and renames the directory to models/<hex> atomically. When
  // that model is already committed, `staging_dir` is removed and the
  // existing model returned. The staged bytes must already be counted
  // (AddUsedBytes).
  absl::StatusOr<v1::Model> CommitModelDir(const std::string& staging_dir, v1::Model model);

  // The model as the folder a conversion reads: work/<job_id>.input/<name>/
  // with a symbolic link to each of the model's files (nothing is copied).
  // Returns the folder. RemoveWorkDir removes it with the job's work dir.
  // REQUIRES: `name` passed core::ValidateModelName.
  absl::StatusOr<std::string> LinkModelFolder(const std::string& model_id,
                                              const std::string& work_name,
                                              const std::string& name);

  // --- artifacts ---
  // A fresh, empty work directory for a job attempt's output (old content
  // removed). `work_name` is WorkName(job id, attempt).
  absl::StatusOr<std::string> CreateWorkDir(const std::string& work_name);
  void RemoveWorkDir(const std::string& work_name);
  // Records `file_names` inside the attempt's work dir (size and sha256)
  // in the artifact's manifest and moves the directory to artifacts/<job id>
  // atomically. A file's sha256 is taken from `written` (the digests the
  // core computed while writing, RunContext::output_digests) when it has
  // one for that name with the file's size; else the file is read and
  // hashed here.
  absl::StatusOr<v1::Artifact> CommitArtifact(const std::string& work_name,
                                              const std::vector<std::string>& file_names,
                                              const core::OutputDigests* written = nullptr);
  // Opens one artifact file ("" = the first). NotFound if absent.
  absl::StatusOr<std::unique_ptr<ArtifactReader>> OpenArtifactFile(const std::string& job_id,
                                                                   const std::string& name);
  absl::Status DeleteArtifact(const std::string& job_id);

  // After a restart: removes every work dir, and artifacts for which
  // `keep(job_id)` is false (left by a crash between commit and journal).
  void CleanupAfterRestart(const std::function<bool(const std::string&)>& keep);

  // --- capacity ---
  // OK when `bytes` more fit under --max-store-bytes and leave
  // --min-free-bytes of disk free, counting reserved bytes as already
  // written; ResourceExhausted naming the limit otherwise.
  absl::Status CheckRoomFor(uint64_t bytes) const;
  // CheckRoomFor and, when OK, reserves `bytes` (atomically with respect to
  // other reservations): uploads reserve their declared size at the start,
  // so two uploads can never both be promised the same free space.
  absl::Status Reserve(uint64_t bytes);
  // Gives back reserved bytes (written, so now counted as used, or abandoned).
  void Release(uint64_t bytes);
  uint64_t reserved_bytes() const;
  // Counts bytes stored outside models/ and artifacts/ (uploads in flight).
  void AddUsedBytes(int64_t delta);
  uint64_t used_bytes() const { return used_bytes_.load(); }
  uint64_t FreeDiskBytes() const;
  const std::string& root() const { return options_.root; }

 private:
  explicit BlobStore(BlobStoreOptions options);
  absl::Status CheckRoomLocked(uint64_t bytes) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(room_mu_);

  // Constant after construction.
  const BlobStoreOptions options_;

  std::atomic<uint64_t> used_bytes_{0};
  mutable absl::Mutex room_mu_;  // makes check-and-reserve atomic
  uint64_t reserved_bytes_ ABSL_GUARDED_BY(room_mu_) = 0;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_BLOB_STORE_H_
