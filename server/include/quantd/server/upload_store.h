// UploadStore: resumable model uploads in flight (UploadModel,
// GetUploadStatus, AbortUpload). An upload's parts are written under the
// data directory's uploads/ folder; Finish verifies every file's sha256 and
// commits the model into the BlobStore.
//
// Layout under `<blob store root>/uploads` (directory names are hashes of
// upload ids, so a client's id never reaches a path):
//   <sha256(upload_id)[:32]>/header.pb        the upload's header, as first sent
//   <sha256(upload_id)[:32]>/f0, f1, ...      the files' bytes so far (resumable
//                                             AtomicFileWriter part files)
//   <sha256(upload_id)[:32]>/model/           the verified files, while committing
//   <sha256(upload_id)[:32]>/done.pending     the model record, while committing
//   <sha256(upload_id)[:32]>/done.pb          the committed model (GetUploadStatus)
// Part bytes are counted in the BlobStore's used bytes.
//
// Space: an upload reserves its declared size in the BlobStore when it
// starts (BlobStore::Reserve); bytes move from reserved to used as they
// arrive, and what is left is released when the upload commits, is aborted
// (AbortUpload, or a write that found the disk full) or expires. So two
// uploads are never promised the same free space.
//
// Commit is all-or-nothing: the parts are moved into model/, the record
// written, and the directory renamed into models/ (the commit point). A
// failure before that point (a full disk included) moves the parts back,
// leaving the upload complete and resumable with no extra bytes used; Open
// finishes or undoes a commit a crash interrupted.
//
// Open file descriptors: a stream holds at most one (the file receiving
// bytes); parts are opened lazily and closed when full.
//
// Thread safety: all methods are thread-safe. An upload has at most one
// UploadWriter at a time (others get ABORTED).
#ifndef QUANTD_SERVER_UPLOAD_STORE_H_
#define QUANTD_SERVER_UPLOAD_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "absl/synchronization/mutex.h"
#include "quantd/server/blob_store.h"
#include "quantd/server/clock.h"
#include "quantd/server/upload_reservations.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::server {

struct UploadStoreOptions {
  uint64_t max_upload_bytes = 64ull << 30;  // per model (all files)
  // Tests only (empty in production): called at the named steps of a commit
  // ("commit:part" after each part is moved, "commit:record" before the
  // record is written, "commit:model" before the model directory is
  // committed); a non-OK status is taken as that step's failure.
  std::function<absl::Status(absl::string_view step)> inject_fault;
};

// What UploadStore::Open found and did in the uploads/ folder.
struct UploadRecovery {
  int resumable = 0;         // incomplete uploads kept (their room reserved)
  int orphans_removed = 0;   // no usable header: removed
  int commits_finished = 0;  // interrupted after the commit point: recorded
  int commits_undone = 0;    // interrupted before it: parts moved back
  int dropped_for_room = 0;  // incomplete uploads whose rest no longer fits
};

class UploadStore;

// One open upload stream. Created by UploadStore::OpenUpload; destroying it
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
  // The same for data in pieces (e.g. the slices a message arrived in).
  absl::Status Append(uint64_t offset, absl::Span<const absl::string_view> pieces);

  // Verifies sizes and sha256s and commits the model atomically.
  // FailedPrecondition: bytes missing (resume). DataLoss: digest mismatch
  // (the upload is discarded). InvalidArgument: a digest is missing.
  absl::StatusOr<v1::Model> Finish(const v1::UploadFinish& finish);

 private:
  friend class UploadStore;
  struct Part;
  UploadWriter(UploadStore* store, std::string upload_id, std::string dir, v1::UploadHeader header);
  absl::Status Prepare();  // measures and re-hashes the committed bytes
  // Moves the verified parts into a model directory and commits it, or
  // undoes every step (see the file comment).
  absl::StatusOr<v1::Model> CommitModel(const std::vector<std::string>& digests);
  // Closes the parts and removes the upload (its bytes and reservation).
  void Discard();

  UploadStore* const store_;
  const std::string upload_id_;
  const std::string dir_;
  const v1::UploadHeader header_;
  std::vector<std::unique_ptr<Part>> parts_;
  uint64_t committed_ = 0;
  uint64_t total_ = 0;
  bool finished_ = false;
};

class UploadStore {
 public:
  // Creates `<blobs->root()>/uploads` if needed and counts the bytes already
  // there in `blobs`. `blobs` and `clock` are not owned and must outlive
  // the store.
  static absl::StatusOr<std::unique_ptr<UploadStore>> Open(BlobStore* blobs,
                                                           const UploadStoreOptions& options,
                                                           Clock* clock);
  UploadStore(const UploadStore&) = delete;
  UploadStore& operator=(const UploadStore&) = delete;

  // Validates `header` (names, sizes, digests, limits, free disk) and opens
  // a new upload or resumes an existing one with the same id and files.
  // InvalidArgument, ResourceExhausted, Aborted (another stream holds it).
  absl::StatusOr<std::unique_ptr<UploadWriter>> OpenUpload(const v1::UploadHeader& header);
  absl::StatusOr<v1::UploadStatus> GetUploadStatus(const std::string& upload_id);
  // When `header` gives every file's sha256 and that model is already
  // committed, returns it (the upload can end at once); NotFound otherwise.
  absl::StatusOr<v1::Model> FindCommittedModel(const v1::UploadHeader& header);

  // Removes an unfinished upload's bytes and releases its reserved room.
  // NotFound (unknown or expired), FailedPrecondition (already committed:
  // DeleteModel deletes the model), Aborted (a stream is writing it).
  absl::Status AbortUpload(const std::string& upload_id);

  // Removes uploads (finished or not) untouched for longer than `max_age`
  // and not open in a stream. Returns how many were removed. With
  // reservations, runs only when this replica claims the sweep for
  // `sweep_period` and skips uploads reserved by any replica.
  int ExpireUploads(int64_t max_age_ms, absl::Duration sweep_period = absl::ZeroDuration());

  // Several replicas share the data directory: coordinate open uploads and
  // the sweep through `reservations` as `owner` (reservations live `ttl`
  // unless renewed). Not owned; must outlive the store. REQUIRES: before
  // the first OpenUpload.
  void UseReservations(UploadReservations* reservations, std::string owner, absl::Duration ttl);

  // What Open found (for the start-up log).
  const UploadRecovery& recovery() const { return recovery_; }
  // Bytes reserved for one upload's missing bytes (0 when none; tests).
  uint64_t ReservedFor(const std::string& upload_id);

 private:
  friend class UploadWriter;
  UploadStore(BlobStore* blobs, UploadStoreOptions options, Clock* clock, std::string dir);
  std::string UploadDir(const std::string& upload_id) const;
  absl::Status ValidateHeader(const v1::UploadHeader& header, uint64_t* total) const;
  void ReleaseUpload(const std::string& upload_id);
  // Start-up: removes orphans, finishes or undoes interrupted commits and
  // reserves the room incomplete uploads still need.
  void Recover();
  // Sets the upload's reservation to `remaining` bytes (reserving more may
  // fail with ResourceExhausted).
  absl::Status SetReservation(const std::string& upload_id, uint64_t remaining);
  // `n` reserved bytes were written.
  void ConsumeReservation(const std::string& upload_id, uint64_t n);
  void DropReservationLocked(const std::string& upload_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Fault(absl::string_view step) const;

  // Constant after construction.
  BlobStore* const blobs_;
  const UploadStoreOptions options_;
  Clock* const clock_;
  const std::string dir_;  // <root>/uploads
  // Set by UseReservations before use, then constant.
  UploadReservations* shared_reservations_ = nullptr;
  std::string owner_;
  absl::Duration reservation_ttl_;

  UploadRecovery recovery_;  // set by Open

  absl::Mutex mu_;
  std::set<std::string> active_uploads_ ABSL_GUARDED_BY(mu_);
  // Upload id -> bytes reserved in the BlobStore for its missing bytes.
  std::map<std::string, uint64_t> reservations_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_UPLOAD_STORE_H_
