#include "quantd/server/job_journal.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"

namespace quantd::server {
namespace {

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  int code = sqlite3_extended_errcode(db);
  std::string msg = absl::StrCat("job journal: ", what, ": ", sqlite3_errmsg(db));
  if (code == SQLITE_FULL) return absl::ResourceExhaustedError(msg);
  if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

// Finalizes a statement when it goes out of scope.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteJobJournal>> SqliteJobJournal::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::InternalError(absl::StrCat("cannot open job journal ", path, ": ", msg));
  }
  std::unique_ptr<SqliteJobJournal> j(new SqliteJobJournal(db));
  sqlite3_busy_timeout(db, 5000);
  absl::MutexLock lock(&j->mu_);
  for (const char* sql : {
           "PRAGMA journal_mode=WAL",
           "PRAGMA synchronous=FULL",
           "CREATE TABLE IF NOT EXISTS jobs ("
           "  job_id TEXT PRIMARY KEY,"
           "  sequence INTEGER NOT NULL,"
           "  state INTEGER NOT NULL,"
           "  record BLOB NOT NULL)",
           "CREATE INDEX IF NOT EXISTS jobs_by_sequence ON jobs(sequence)",
       }) {
    absl::Status st = j->Exec(sql);
    if (!st.ok()) return st;
  }
  return j;
}

SqliteJobJournal::~SqliteJobJournal() { sqlite3_close(db_); }

absl::Status SqliteJobJournal::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("job journal: ", sql, ": ", msg));
  }
  return absl::OkStatus();
}

absl::Status SqliteJobJournal::Put(const v1::Job& job) {
  std::string bytes = job.SerializeAsString();
  absl::MutexLock lock(&mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_,
                         "INSERT OR REPLACE INTO jobs(job_id, sequence, state, record) "
                         "VALUES(?, ?, ?, ?)",
                         -1, &st.s, nullptr) != SQLITE_OK) {
    return SqliteError(db_, "prepare");
  }
  sqlite3_bind_text(st.s, 1, job.job_id().data(), static_cast<int>(job.job_id().size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.s, 2, static_cast<sqlite3_int64>(job.sequence()));
  sqlite3_bind_int(st.s, 3, static_cast<int>(job.state()));
  sqlite3_bind_blob(st.s, 4, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) return SqliteError(db_, "put");
  return absl::OkStatus();
}

absl::Status SqliteJobJournal::Delete(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "DELETE FROM jobs WHERE job_id = ?", -1, &st.s, nullptr) !=
      SQLITE_OK) {
    return SqliteError(db_, "prepare");
  }
  sqlite3_bind_text(st.s, 1, job_id.data(), static_cast<int>(job_id.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) return SqliteError(db_, "delete");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::Job>> SqliteJobJournal::LoadAll() {
  absl::MutexLock lock(&mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT record FROM jobs ORDER BY sequence", -1, &st.s, nullptr) !=
      SQLITE_OK) {
    return SqliteError(db_, "prepare");
  }
  std::vector<v1::Job> jobs;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    const void* data = sqlite3_column_blob(st.s, 0);
    int size = sqlite3_column_bytes(st.s, 0);
    v1::Job job;
    if (!job.ParseFromArray(data, size)) {
      return absl::DataLossError("job journal: a job record does not parse");
    }
    jobs.push_back(std::move(job));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "load");
  return jobs;
}

}  // namespace quantd::server
