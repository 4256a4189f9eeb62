// JobJournal: durable storage of job records (the write-ahead journal the
// JobStore replays after a restart). SqliteJobJournal is the real one (SQLite
// in WAL mode, synchronous=FULL: a Put that returned OK survives kill -9 and
// power loss); tests use the in-memory MemoryJobJournal from tests/testing.
//
// Thread safety: implementations are thread-safe.
#ifndef QUANTD_SERVER_JOB_JOURNAL_H_
#define QUANTD_SERVER_JOB_JOURNAL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "quantd/v1/quantd.pb.h"

struct sqlite3;

namespace quantd::server {

class JobJournal {
 public:
  virtual ~JobJournal() = default;
  // Inserts or replaces the record for job.job_id(), durably.
  virtual absl::Status Put(const v1::Job& job) = 0;
  virtual absl::Status Delete(const std::string& job_id) = 0;
  // Every record, in submission (sequence) order.
  virtual absl::StatusOr<std::vector<v1::Job>> LoadAll() = 0;
};

class SqliteJobJournal final : public JobJournal {
 public:
  // Opens or creates the database file at `path`.
  static absl::StatusOr<std::unique_ptr<SqliteJobJournal>> Open(const std::string& path);
  ~SqliteJobJournal() override;

  absl::Status Put(const v1::Job& job) override;
  absl::Status Delete(const std::string& job_id) override;
  absl::StatusOr<std::vector<v1::Job>> LoadAll() override;

 private:
  explicit SqliteJobJournal(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* const db_;  // owned; used under mu_
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_JOB_JOURNAL_H_
