// BlobStore: the service's files on local disk — resumable uploads, committed
// models (content-addressed) and job artifacts.
//
// Layout under `root` (every path is built from server-made values only:
// hex digests, hashes of upload ids, server job ids, and file names that
// passed ValidateFileName):
//   uploads/<sha256(upload_id)[:32]>/header.pb, f0, f1, ...   parts in flight
//   models/<model hex>/manifest.pb + the model's files          committed models
//   work/<job id>/                                              job output in progress
//   artifacts/<job id>/manifest.pb + files                      finished artifacts
// Commits are atomic: files are fsynced, a directory is filled beside its
// final place and renamed into it, and the parent directory is fsynced. A
// crash leaves either no model/artifact or the complete one.
//
// Thread safety: all methods are thread-safe. An upload has at most one
// UploadWriter at a time (others get ABORTED).
#ifndef QUANTD_SERVER_BLOB_STORE_H_
#define QUANTD_SERVER_BLOB_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "quantd/server/clock.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::server {

struct BlobStoreOptions {
  std::string root;                            // the data directory
  uint64_t max_upload_bytes = 64ull << 30;     // per model (all files)
  uint64_t max_store_bytes = 0;                // models+artifacts+uploads; 0: no limit
  uint64_t min_free_bytes = 256ull << 20;      // keep this much disk free
};

class BlobStore;

// One open upload stream. Created by BlobStore::OpenUpload; destroying it
// without Finish keeps the committed bytes for a later resume.
// Thread safety: not thread-safe (one stream).
class UploadWriter {
 public:
  ~UploadWriter();
  UploadWriter(const UploadWriter&) = delete;
  UploadWriter& operator=(const UploadWriter&) = delete;

  const std::string& upload_id() const { return upload_id_; }
  uint64_t committed_bytes() const { return committed_; }
  uint64_t total_bytes() const { return total_; }

  // Appends `data` at `offset` (over all files in header order).
  // REQUIRES offset == committed_bytes(); InvalidArgument otherwise or when
  // the data runs past the declared sizes.
  absl::Status Append(uint64_t offset, absl::string_view data);

  // Verifies sizes and sha256s and commits the model atomically.
  // FailedPrecondition: bytes missing (resume). DataLoss: digest mismatch
  // (the upload is discarded). InvalidArgument: a digest is missing.
  absl::StatusOr<v1::Model> Finish(const v1::UploadFinish& finish);

 private:
  friend class BlobStore;
  UploadWriter(BlobStore* store, std::string upload_id, std::string dir, v1::UploadHeader header);
  absl::Status Prepare();  // opens part files, re-hashes committed bytes
  struct Part;

  BlobStore* const store_;
  const std::string upload_id_;
  const std::string dir_;
  const v1::UploadHeader header_;
  std::vector<std::unique_ptr<Part>> parts_;
  uint64_t committed_ = 0;
  uint64_t total_ = 0;
  bool finished_ = false;
};

// An artifact file opened for reading.
class ArtifactReader {
 public:
  ~ArtifactReader();
  ArtifactReader(const ArtifactReader&) = delete;
  ArtifactReader& operator=(const ArtifactReader&) = delete;
  const v1::FileInfo& info() const { return info_; }
  // Reads up to `max` bytes at `offset` into `out` (replaced). Empty at EOF.
  absl::Status ReadAt(uint64_t offset, size_t max, std::string* out);

 private:
  friend class BlobStore;
  ArtifactReader(int fd, v1::FileInfo info) : fd_(fd), info_(std::move(info)) {}
  const int fd_;
  const v1::FileInfo info_;
};

class BlobStore {
 public:
  // Creates the directories under options.root if needed. `clock` is not
  // owned and must outlive the store.
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(const BlobStoreOptions& options,
                                                         Clock* clock);
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;

  // --- uploads and models ---
  // Validates `header` (names, sizes, digests, limits, free disk) and opens
  // a new upload or resumes an existing one with the same id and files.
  // InvalidArgument, ResourceExhausted, Aborted (another stream holds it).
  absl::StatusOr<std::unique_ptr<UploadWriter>> OpenUpload(const v1::UploadHeader& header);
  absl::StatusOr<v1::UploadStatus> GetUploadStatus(const std::string& upload_id);
  // When `header` gives every file's sha256 and that model is already
  // committed, returns it (the upload can end at once); NotFound otherwise.
  absl::StatusOr<v1::Model> FindCommittedModel(const v1::UploadHeader& header);
  absl::StatusOr<v1::Model> GetModel(const std::string& model_id);
  // Path of the model's first file, for the core. NotFound if deleted.
  absl::StatusOr<std::string> ModelInputPath(const std::string& model_id);
  absl::Status DeleteModel(const std::string& model_id);

  // --- artifacts ---
  // A fresh, empty work directory for a job's output (old content removed).
  absl::StatusOr<std::string> CreateWorkDir(const std::string& job_id);
  void RemoveWorkDir(const std::string& job_id);
  // Hashes `file_names` inside the job's work dir and moves the directory
  // to artifacts/<job_id> atomically.
  absl::StatusOr<v1::Artifact> CommitArtifact(const std::string& job_id,
                                              const std::vector<std::string>& file_names);
  // Opens one artifact file ("" = the first). NotFound if absent.
  absl::StatusOr<std::unique_ptr<ArtifactReader>> OpenArtifactFile(const std::string& job_id,
                                                                   const std::string& name);
  absl::Status DeleteArtifact(const std::string& job_id);

  // After a restart: removes every work dir, and artifacts for which
  // `keep(job_id)` is false (left by a crash between commit and journal).
  void CleanupAfterRestart(const std::function<bool(const std::string&)>& keep);

  // Removes uploads (finished or not) untouched for longer than `max_age`
  // and not open in a stream. Returns how many were removed.
  int ExpireUploads(int64_t max_age_ms);

  uint64_t used_bytes() const { return used_bytes_.load(); }
  uint64_t FreeDiskBytes() const;
  const std::string& root() const { return options_.root; }

  // A plain file name: [A-Za-z0-9][A-Za-z0-9._-]{0,127}, not ending in
  // ".tmp". InvalidArgument naming the problem otherwise.
  static absl::Status ValidateFileName(absl::string_view name);
  // "sha256:<64 hex>" -> the hex; InvalidArgument otherwise.
  static absl::StatusOr<std::string> ModelHex(absl::string_view model_id);
  static absl::Status ValidateJobId(absl::string_view job_id);
  static absl::Status ValidateUploadId(absl::string_view upload_id);
  // The model id for these files (names, sizes, digests in order): the
  // documented formula of Model.model_id.
  static std::string ModelIdFor(const google::protobuf::RepeatedPtrField<v1::FileInfo>& files);

 private:
  friend class UploadWriter;
  BlobStore(BlobStoreOptions options, Clock* clock);
  std::string UploadDir(const std::string& upload_id) const;
  absl::StatusOr<v1::Model> CommitModel(UploadWriter* writer,
                                        const std::vector<std::string>& digests);
  void ReleaseUpload(const std::string& upload_id);
  void AddUsed(int64_t delta);

  // Constant after construction.
  const BlobStoreOptions options_;
  Clock* const clock_;

  std::atomic<uint64_t> used_bytes_{0};
  absl::Mutex mu_;
  std::set<std::string> active_uploads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_BLOB_STORE_H_
