#include "quantd/server/postgres_job_store.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quantd/core/base/quoted.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/server/ids.h"

namespace quantd::server {

// ------------------------------------------------------------- connections

namespace {

// One query parameter: text, or binary bytes (bytea), or NULL.
struct PgParam {
  std::string value;
  bool binary = false;
  bool null = false;
};
PgParam Text(std::string v) { return PgParam{std::move(v), false, false}; }
PgParam Int(int64_t v) { return PgParam{absl::StrCat(v), false, false}; }
PgParam Bytes(std::string v) { return PgParam{std::move(v), true, false}; }

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// The value of (row, col) as bytes (results are binary: select integers as
// ::text to read them here).
std::string Value(const PgResult& r, int row, int col) {
  return std::string(PQgetvalue(r.get(), row, col),
                     static_cast<size_t>(PQgetlength(r.get(), row, col)));
}
int64_t IntValue(const PgResult& r, int row, int col) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(Value(r, row, col), &v)) return 0;
  return v;
}

absl::Status ErrorFor(PGconn* conn, const PGresult* r, absl::string_view what) {
  std::string msg = absl::StrCat("job store (PostgreSQL): ", what, ": ",
                                 r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn));
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (PQstatus(conn) != CONNECTION_OK) return absl::UnavailableError(msg);
  const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const std::string code = state != nullptr ? state : "";
  if (code == "40001" || code == "40P01") return absl::AbortedError(msg);
  if (code.rfind("08", 0) == 0 || code.rfind("57P", 0) == 0) return absl::UnavailableError(msg);
  if (code == "23505") return absl::AlreadyExistsError(msg);
  if (code == "53100") return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

// Runs `sql` with `params`; binary results.
absl::StatusOr<PgResult> Exec(PGconn* conn, const char* sql,
                              const std::vector<PgParam>& params = {}) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const PgParam& p : params) {
    values.push_back(p.null ? nullptr : p.value.data());
    lengths.push_back(static_cast<int>(p.value.size()));
    formats.push_back(p.binary ? 1 : 0);
  }
  PgResult r(PQexecParams(conn, sql, static_cast<int>(params.size()), nullptr, values.data(),
                          lengths.data(), formats.data(), /*resultFormat=*/1));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return ErrorFor(conn, r.get(), absl::string_view(sql).substr(0, 60));
  }
  return r;
}

// Runs several statements without parameters (a migration).
absl::Status ExecScript(PGconn* conn, const char* sql) {
  PgResult r(PQexec(conn, sql));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorFor(conn, r.get(), "migration");
  return absl::OkStatus();
}

// A replica paused or hung between BEGIN and COMMIT (SIGSTOP, a debugger, a
// stalled VM) would hold its row locks for as long as its session lives, and
// every other replica's FOR UPDATE SKIP LOCKED would pass its job over: the
// lease could expire without anyone taking the job over. The server ends such
// a session after this long idle inside a transaction (ours last
// milliseconds); the pool reconnects.
void LimitIdleTransactions(PGconn* conn) {
  PgResult r(PQexec(conn, "SET idle_in_transaction_session_timeout = '10s'"));
}

absl::StatusOr<PGconn*> Connect(const std::string& dsn) {
  PGconn* conn = PQconnectdb(dsn.c_str());
  if (conn == nullptr) return absl::ResourceExhaustedError("PostgreSQL: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("cannot connect to the job store: ", msg));
  }
  LimitIdleTransactions(conn);
  return conn;
}

v1::Job ParseJob(const std::string& bytes, absl::Status* st) {
  v1::Job job;
  if (!job.ParseFromString(bytes)) {
    *st = absl::DataLossError("job store (PostgreSQL): a job record does not parse");
  }
  return job;
}

// The columns every write stores beside the record.
std::vector<PgParam> RowParams(const v1::Job& job) {
  return {Text(job.job_id()), Int(job.state()), Int(job.priority()), Int(job.attempts()),
          Bytes(job.SerializeAsString())};
}

constexpr char kNotifyChannel[] = "quantd_job_events";
// The advisory lock key under which migrations run ("quantd" in ASCII).
constexpr int64_t kMigrationLockKey = 0x7175616e7464;

// Versioned schema migrations: element i takes the schema from version i to
// i + 1. Append only; never edit one that shipped.
constexpr const char* kMigrations[] = {
    // 1: the jobs table, its queue and uniqueness indexes.
    "CREATE SEQUENCE quantd_job_sequence;"
    "CREATE TABLE quantd_jobs ("
    "  job_id text PRIMARY KEY,"
    "  sequence bigint NOT NULL,"
    "  state integer NOT NULL,"
    "  priority integer NOT NULL,"
    "  attempts integer NOT NULL,"
    "  model_id text NOT NULL,"
    "  idempotency_key text,"
    "  dedup_key text,"
    "  revision bigint NOT NULL DEFAULT 1,"
    "  lease_owner text,"
    "  lease_expires_at timestamptz,"
    "  cancel_requested boolean NOT NULL DEFAULT false,"
    "  record bytea NOT NULL);"
    "CREATE UNIQUE INDEX quantd_jobs_idempotency ON quantd_jobs(idempotency_key)"
    "  WHERE idempotency_key IS NOT NULL;"
    // FAILED (4) and CANCELLED (5) jobs do not absorb new submissions.
    "CREATE UNIQUE INDEX quantd_jobs_dedup_active ON quantd_jobs(dedup_key)"
    "  WHERE dedup_key IS NOT NULL AND state NOT IN (4, 5);"
    "CREATE INDEX quantd_jobs_queue ON quantd_jobs(priority DESC, sequence) WHERE state = 1;"
    "CREATE INDEX quantd_jobs_leases ON quantd_jobs(lease_expires_at) WHERE state = 2;"
    "CREATE INDEX quantd_jobs_sequence ON quantd_jobs(sequence);"
    "CREATE INDEX quantd_jobs_model ON quantd_jobs(model_id);",
    // 2: upload reservations and once-per-period maintenance tasks.
    "CREATE TABLE quantd_upload_reservations ("
    "  upload_id text PRIMARY KEY,"
    "  owner text NOT NULL,"
    "  expires_at timestamptz NOT NULL);"
    "CREATE TABLE quantd_maintenance ("
    "  task text PRIMARY KEY,"
    "  next_run timestamptz NOT NULL);",
};

}  // namespace

// A fixed number of connections handed out one caller at a time.
class PgConnectionPool {
 public:
  PgConnectionPool(std::string dsn, int size) : dsn_(std::move(dsn)), size_(size) {}
  ~PgConnectionPool() {
    for (PGconn* c : idle_) PQfinish(c);
  }

  // Runs `fn` with a connection of its own. A broken connection is
  // replaced before use.
  template <typename Fn>
  auto With(Fn fn) -> decltype(fn(static_cast<PGconn*>(nullptr))) {
    PGconn* conn = nullptr;
    {
      absl::MutexLock lock(&mu_);
      auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !idle_.empty() || open_ < size_;
      };
      mu_.Await(absl::Condition(&available));
      if (!idle_.empty()) {
        conn = idle_.back();
        idle_.pop_back();
      } else {
        ++open_;
      }
    }
    if (conn != nullptr && PQstatus(conn) != CONNECTION_OK) {
      PQreset(conn);
      if (PQstatus(conn) == CONNECTION_OK) LimitIdleTransactions(conn);
    }
    if (conn == nullptr) {
      auto c = Connect(dsn_);
      if (!c.ok()) {
        absl::MutexLock lock(&mu_);
        --open_;
        return c.status();
      }
      conn = *c;
    }
    auto result = fn(conn);
    absl::MutexLock lock(&mu_);
    idle_.push_back(conn);
    return result;
  }

  const std::string& dsn() const { return dsn_; }

 private:
  const std::string dsn_;
  const int size_;
  absl::Mutex mu_;
  std::vector<PGconn*> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + in use
};

namespace {

// Runs `fn` in a transaction on one pooled connection: COMMIT if it returns
// OK, ROLLBACK otherwise. A transaction that failed because the connection
// broke (Unavailable) or a serialization conflict (Aborted) is run once more.
absl::Status InTransaction(PgConnectionPool* pool, const std::function<absl::Status(PGconn*)>& fn) {
  absl::Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    last = pool->With([&](PGconn* conn) -> absl::Status {
      QUANTD_RETURN_IF_ERROR(Exec(conn, "BEGIN").status());
      absl::Status st = fn(conn);
      if (st.ok()) {
        auto commit = Exec(conn, "COMMIT");
        return commit.status();
      }
      (void)Exec(conn, "ROLLBACK");
      return st;
    });
    if (!absl::IsUnavailable(last) && !absl::IsAborted(last)) return last;
  }
  return last;
}

}  // namespace

// ------------------------------------------------------------------- store

int PostgresJobStore::LatestSchemaVersion() {
  return static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));
}

absl::StatusOr<std::unique_ptr<PostgresJobStore>> PostgresJobStore::Open(
    const PostgresJobStoreOptions& options, Clock* clock) {
  auto pool = std::make_unique<PgConnectionPool>(options.dsn, std::max(1, options.max_connections));
  // Migrations: one transaction under an advisory lock, so replicas that
  // start together apply each migration once, in order.
  absl::Status st = InTransaction(pool.get(), [](PGconn* conn) -> absl::Status {
    QUANTD_RETURN_IF_ERROR(
        Exec(conn, "SELECT pg_advisory_xact_lock($1::bigint)", {Int(kMigrationLockKey)}).status());
    QUANTD_RETURN_IF_ERROR(Exec(conn,
                                "CREATE TABLE IF NOT EXISTS quantd_schema_migrations ("
                                "  version integer PRIMARY KEY,"
                                "  applied_at timestamptz NOT NULL DEFAULT now())")
                               .status());
    QUANTD_ASSIGN_OR_RETURN(
        PgResult r,
        Exec(conn, "SELECT coalesce(max(version), 0)::text FROM quantd_schema_migrations"));
    const int current = static_cast<int>(IntValue(r, 0, 0));
    const int latest = LatestSchemaVersion();
    if (current > latest) {
      return absl::FailedPreconditionError(absl::StrCat("the job store's schema is at version ",
                                                        current, ", newer than this quantd knows (",
                                                        latest, "); upgrade quantd"));
    }
    for (int v = current; v < latest; ++v) {
      QUANTD_RETURN_IF_ERROR(ExecScript(conn, kMigrations[v]));
      QUANTD_RETURN_IF_ERROR(
          Exec(conn, "INSERT INTO quantd_schema_migrations(version) VALUES ($1::integer)",
               {Int(v + 1)})
              .status());
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  std::unique_ptr<PostgresJobStore> store(new PostgresJobStore(options, clock, std::move(pool)));
  store->listener_ = std::thread([s = store.get()] { s->ListenLoop(); });
  return store;
}

PostgresJobStore::PostgresJobStore(PostgresJobStoreOptions options, Clock* clock,
                                   std::unique_ptr<PgConnectionPool> pool)
    : options_(std::move(options)), clock_(clock), pool_(std::move(pool)) {}

PostgresJobStore::~PostgresJobStore() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (listener_.joinable()) listener_.join();
}

absl::Status PostgresJobStore::Recover(const CrashRecord& /*crash*/,
                                       std::vector<std::string>* requeued,
                                       std::vector<std::string>* /*quarantined*/) {
  QUANTD_ASSIGN_OR_RETURN(std::vector<std::string> ids, RequeueExpired(clock_->NowUnixMs()));
  requeued->insert(requeued->end(), ids.begin(), ids.end());
  return absl::OkStatus();
}

absl::StatusOr<JobStore::CreateResult> PostgresJobStore::Create(v1::Job job) {
  job.set_state(v1::JOB_STATE_QUEUED);
  job.mutable_progress()->set_phase("queued");
  job.mutable_progress()->set_eta_seconds(-1);
  job.set_create_time_ms(clock_->NowUnixMs());
  // An id collision, or a conflicting job deleted between the insert and
  // the look-up, makes a round find nothing: try again.
  for (int round = 0; round < 5; ++round) {
    CreateResult result;
    absl::Status st = pool_->With([&](PGconn* conn) -> absl::Status {
      QUANTD_ASSIGN_OR_RETURN(PgResult seq,
                              Exec(conn, "SELECT nextval('quantd_job_sequence')::text"));
      job.set_job_id(NewJobId());
      job.set_sequence(static_cast<uint64_t>(IntValue(seq, 0, 0)));
      std::vector<PgParam> params = RowParams(job);
      params.push_back(Int(static_cast<int64_t>(job.sequence())));
      params.push_back(Text(job.model_id()));
      params.push_back(Text(job.idempotency_key()));
      params.push_back(Text(job.dedup_key()));
      QUANTD_ASSIGN_OR_RETURN(
          PgResult ins,
          Exec(conn,
               "INSERT INTO quantd_jobs(job_id, state, priority, attempts, record, sequence,"
               "  model_id, idempotency_key, dedup_key)"
               " VALUES ($1, $2::integer, $3::integer, $4::integer, $5, $6::bigint, $7,"
               "  NULLIF($8, ''), NULLIF($9, ''))"
               " ON CONFLICT DO NOTHING RETURNING job_id",
               params));
      if (PQntuples(ins.get()) == 1) {
        result.job = job;
        result.created = true;
        return absl::OkStatus();
      }
      // Lost to an existing job: return the one that holds the key.
      if (!job.idempotency_key().empty()) {
        QUANTD_ASSIGN_OR_RETURN(PgResult r, Exec(conn,
                                                 "SELECT record FROM quantd_jobs"
                                                 " WHERE idempotency_key = $1",
                                                 {Text(job.idempotency_key())}));
        if (PQntuples(r.get()) == 1) {
          absl::Status parse;
          result.job = ParseJob(Value(r, 0, 0), &parse);
          return parse;
        }
      }
      if (!job.dedup_key().empty()) {
        QUANTD_ASSIGN_OR_RETURN(PgResult r, Exec(conn,
                                                 "SELECT record FROM quantd_jobs"
                                                 " WHERE dedup_key = $1 AND state NOT IN (4, 5)",
                                                 {Text(job.dedup_key())}));
        if (PQntuples(r.get()) == 1) {
          absl::Status parse;
          result.job = ParseJob(Value(r, 0, 0), &parse);
          return parse;
        }
      }
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    if (result.created || !result.job.job_id().empty()) return result;
  }
  return absl::AbortedError("job store: could not record the job (conflicts); retry");
}

absl::StatusOr<v1::Job> PostgresJobStore::Get(const std::string& job_id) {
  return pool_->With([&](PGconn* conn) -> absl::StatusOr<v1::Job> {
    QUANTD_ASSIGN_OR_RETURN(
        PgResult r, Exec(conn, "SELECT record FROM quantd_jobs WHERE job_id = $1", {Text(job_id)}));
    if (PQntuples(r.get()) == 0) {
      return absl::NotFoundError(absl::StrCat("job ", core::Quoted(job_id), " not found"));
    }
    absl::Status st;
    v1::Job job = ParseJob(Value(r, 0, 0), &st);
    if (!st.ok()) return st;
    return job;
  });
}

namespace {

// Stores `job` (already changed) over its locked row; the lease columns
// stay only while it is RUNNING. Returns the new revision.
absl::StatusOr<int64_t> WriteRow(PGconn* conn, const v1::Job& job) {
  QUANTD_ASSIGN_OR_RETURN(
      PgResult r, Exec(conn,
                       "UPDATE quantd_jobs SET state = $2::integer, priority = $3::integer,"
                       "  attempts = $4::integer, record = $5, revision = revision + 1,"
                       "  lease_owner = CASE WHEN $2::integer = 2 THEN lease_owner END,"
                       "  lease_expires_at = CASE WHEN $2::integer = 2 THEN lease_expires_at END,"
                       "  cancel_requested = ($2::integer = 2 AND cancel_requested)"
                       " WHERE job_id = $1 RETURNING revision::text",
                       RowParams(job)));
  if (PQntuples(r.get()) != 1) return absl::NotFoundError("job vanished while locked");
  QUANTD_RETURN_IF_ERROR(
      Exec(conn, "SELECT pg_notify($1, $2)", {Text(kNotifyChannel), Text(job.job_id())}).status());
  return IntValue(r, 0, 0);
}

}  // namespace

absl::StatusOr<v1::Job> PostgresJobStore::Update(
    const std::string& job_id, const std::function<absl::Status(v1::Job*)>& mutate, bool durable) {
  v1::Job next;
  int64_t revision = 0;
  absl::Status st = InTransaction(pool_.get(), [&](PGconn* conn) -> absl::Status {
    if (!durable) {
      // Progress: may be lost in a crash, so do not wait for the WAL flush.
      QUANTD_RETURN_IF_ERROR(Exec(conn, "SET LOCAL synchronous_commit TO OFF").status());
    }
    QUANTD_ASSIGN_OR_RETURN(
        PgResult r,
        Exec(conn, "SELECT record FROM quantd_jobs WHERE job_id = $1 FOR UPDATE", {Text(job_id)}));
    if (PQntuples(r.get()) == 0) {
      return absl::NotFoundError(absl::StrCat("job ", core::Quoted(job_id), " not found"));
    }
    absl::Status parse;
    next = ParseJob(Value(r, 0, 0), &parse);
    QUANTD_RETURN_IF_ERROR(parse);
    QUANTD_RETURN_IF_ERROR(mutate(&next));
    QUANTD_ASSIGN_OR_RETURN(revision, WriteRow(conn, next));
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  Dispatch(next, revision);
  return next;
}

absl::Status PostgresJobStore::Delete(const std::string& job_id) {
  return InTransaction(pool_.get(), [&](PGconn* conn) -> absl::Status {
    QUANTD_ASSIGN_OR_RETURN(
        PgResult r, Exec(conn, "SELECT state::text FROM quantd_jobs WHERE job_id = $1 FOR UPDATE",
                         {Text(job_id)}));
    if (PQntuples(r.get()) == 0) {
      return absl::NotFoundError(absl::StrCat("job ", core::Quoted(job_id), " not found"));
    }
    const auto state = static_cast<v1::JobState>(IntValue(r, 0, 0));
    if (!IsFinalState(state)) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job_id, " is ", v1::JobState_Name(state),
                       "; cancel it (CancelJob) and wait for it to end before deleting"));
    }
    return Exec(conn, "DELETE FROM quantd_jobs WHERE job_id = $1", {Text(job_id)}).status();
  });
}

absl::StatusOr<v1::ListJobsResponse> PostgresJobStore::List(const v1::ListJobsRequest& request) {
  uint64_t before = 0;
  int page_size = 0;
  QUANTD_RETURN_IF_ERROR(ParseListRequest(request, &before, &page_size));
  // Newest first in batches; labels are filtered here (they live in the
  // record), so read on until a page and one more are found.
  std::vector<std::string> states;
  for (int s : request.states()) states.push_back(absl::StrCat(s));
  const std::string state_array = absl::StrCat("{", absl::StrJoin(states, ","), "}");
  constexpr int kBatch = 500;
  std::vector<v1::Job> matched;
  uint64_t cursor = std::min<uint64_t>(before, static_cast<uint64_t>(INT64_MAX));
  while (static_cast<int>(matched.size()) <= page_size) {
    auto batch = pool_->With([&](PGconn* conn) -> absl::StatusOr<PgResult> {
      return Exec(conn,
                  "SELECT record FROM quantd_jobs WHERE sequence < $1::bigint"
                  " AND ($2 = '' OR model_id = $2)"
                  " AND (cardinality($3::integer[]) = 0 OR state = ANY($3::integer[]))"
                  " ORDER BY sequence DESC LIMIT $4::integer",
                  {Int(static_cast<int64_t>(cursor)), Text(request.model_id()), Text(state_array),
                   Int(kBatch)});
    });
    if (!batch.ok()) return batch.status();
    const int rows = PQntuples(batch->get());
    for (int i = 0; i < rows && static_cast<int>(matched.size()) <= page_size; ++i) {
      absl::Status st;
      v1::Job job = ParseJob(Value(*batch, i, 0), &st);
      if (!st.ok()) return st;
      cursor = job.sequence();
      if (MatchesListFilter(request, before, job)) matched.push_back(std::move(job));
    }
    if (rows < kBatch) break;
  }
  v1::ListJobsResponse response;
  for (size_t i = 0; i < matched.size() && static_cast<int>(i) < page_size; ++i) {
    *response.add_jobs() = matched[i];
  }
  if (static_cast<int>(matched.size()) > page_size) {
    response.set_next_page_token(absl::StrCat("s", matched[page_size - 1].sequence()));
  }
  return response;
}

std::vector<v1::Job> PostgresJobStore::Queued() {
  std::vector<v1::Job> out;
  (void)pool_->With([&](PGconn* conn) -> absl::Status {
    QUANTD_ASSIGN_OR_RETURN(
        PgResult r, Exec(conn, "SELECT record FROM quantd_jobs WHERE state = 1 ORDER BY sequence"));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      absl::Status st;
      v1::Job job = ParseJob(Value(r, i, 0), &st);
      if (st.ok()) out.push_back(std::move(job));
    }
    return absl::OkStatus();
  });
  return out;
}

bool PostgresJobStore::HasActiveJobForModel(const std::string& model_id) {
  auto r = pool_->With([&](PGconn* conn) {
    return Exec(conn, "SELECT 1 FROM quantd_jobs WHERE model_id = $1 AND state IN (1, 2) LIMIT 1",
                {Text(model_id)});
  });
  // Unknown (database unreachable) counts as active: callers refuse to
  // delete the model.
  return !r.ok() || PQntuples(r->get()) > 0;
}

bool PostgresJobStore::IsSucceeded(const std::string& job_id) {
  auto r = pool_->With([&](PGconn* conn) {
    return Exec(conn, "SELECT 1 FROM quantd_jobs WHERE job_id = $1 AND state = 3", {Text(job_id)});
  });
  // Unknown counts as succeeded: callers keep the artifact.
  return !r.ok() || PQntuples(r->get()) > 0;
}

absl::StatusOr<std::pair<int64_t, v1::Job>> PostgresJobStore::Subscribe(const std::string& job_id,
                                                                        Listener listener) {
  auto row = pool_->With([&](PGconn* conn) {
    return Exec(conn, "SELECT record, revision::text FROM quantd_jobs WHERE job_id = $1",
                {Text(job_id)});
  });
  if (!row.ok()) return row.status();
  if (PQntuples(row->get()) == 0) {
    return absl::NotFoundError(absl::StrCat("job ", core::Quoted(job_id), " not found"));
  }
  absl::Status st;
  v1::Job job = ParseJob(Value(*row, 0, 0), &st);
  if (!st.ok()) return st;
  absl::MutexLock lock(&mu_);
  const int64_t token = next_token_++;
  subscribers_[token] = Subscriber{job_id, std::move(listener), IntValue(*row, 0, 1)};
  // A change made between the read above and now was dispatched to nobody:
  // the listener thread reads the job again right away.
  to_refresh_.insert(job_id);
  return std::make_pair(token, std::move(job));
}

void PostgresJobStore::Unsubscribe(int64_t token) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(token);
}

void PostgresJobStore::Dispatch(const v1::Job& job, int64_t revision) {
  absl::MutexLock lock(&mu_);
  for (auto& [token, sub] : subscribers_) {
    if (sub.job_id != job.job_id() || sub.revision >= revision) continue;
    sub.revision = revision;
    if (sub.listener) sub.listener(job);
  }
}

void PostgresJobStore::Refresh(const std::vector<std::string>& job_ids) {
  if (job_ids.empty()) return;
  // Job ids are validated ([a-z0-9_]), so the array literal needs no quoting.
  const std::string array = absl::StrCat("{", absl::StrJoin(job_ids, ","), "}");
  auto rows = pool_->With([&](PGconn* conn) {
    return Exec(conn,
                "SELECT record, revision::text FROM quantd_jobs WHERE job_id = ANY($1::text[])",
                {Text(array)});
  });
  if (!rows.ok()) return;  // the next poll tries again
  for (int i = 0; i < PQntuples(rows->get()); ++i) {
    absl::Status st;
    v1::Job job = ParseJob(Value(*rows, i, 0), &st);
    if (st.ok()) Dispatch(job, IntValue(*rows, i, 1));
  }
}

void PostgresJobStore::ListenLoop() {
  PGconn* conn = nullptr;
  auto connect = [&]() {
    if (conn != nullptr) PQfinish(conn);
    conn = nullptr;
    auto c = Connect(options_.dsn);
    if (!c.ok()) return;
    conn = *c;
    if (!Exec(conn, absl::StrCat("LISTEN ", kNotifyChannel).c_str()).ok()) {
      PQfinish(conn);
      conn = nullptr;
    }
  };
  connect();
  absl::Time next_poll = absl::Now() + options_.poll_interval;
  while (true) {
    std::set<std::string> ids;
    bool poll_all = false;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      ids.swap(to_refresh_);
    }
    if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
      connect();
      poll_all = true;  // notifications may have been lost meanwhile
    }
    if (conn != nullptr) {
      pollfd pfd{PQsocket(conn), POLLIN, 0};
      if (::poll(&pfd, 1, 50) > 0) PQconsumeInput(conn);
      while (PGnotify* n = PQnotifies(conn)) {
        ids.insert(n->extra);
        PQfreemem(n);
      }
    } else {
      absl::SleepFor(absl::Seconds(1));  // unreachable: do not hammer it
    }
    if (absl::Now() >= next_poll) {
      poll_all = true;
      next_poll = absl::Now() + options_.poll_interval;
    }
    std::vector<std::string> wanted;
    {
      absl::MutexLock lock(&mu_);
      std::set<std::string> watched;
      for (const auto& [token, sub] : subscribers_) watched.insert(sub.job_id);
      for (const std::string& id : watched) {
        if (poll_all || ids.count(id) != 0) wanted.push_back(id);
      }
    }
    Refresh(wanted);
  }
  if (conn != nullptr) PQfinish(conn);
}

// ------------------------------------------------------------------ leases

absl::StatusOr<std::optional<v1::Job>> PostgresJobStore::ClaimNext(const std::string& owner,
                                                                   absl::Duration lease,
                                                                   int64_t now_ms) {
  std::optional<v1::Job> claimed;
  int64_t revision = 0;
  absl::Status st = InTransaction(pool_.get(), [&](PGconn* conn) -> absl::Status {
    claimed.reset();
    QUANTD_ASSIGN_OR_RETURN(PgResult r, Exec(conn,
                                             "SELECT record FROM quantd_jobs WHERE state = 1"
                                             " ORDER BY priority DESC, sequence LIMIT 1"
                                             " FOR UPDATE SKIP LOCKED"));
    if (PQntuples(r.get()) == 0) return absl::OkStatus();
    absl::Status parse;
    v1::Job job = ParseJob(Value(r, 0, 0), &parse);
    QUANTD_RETURN_IF_ERROR(parse);
    job.set_state(v1::JOB_STATE_RUNNING);
    job.set_start_time_ms(now_ms);
    job.set_attempts(job.attempts() + 1);
    job.mutable_progress()->Clear();
    job.mutable_progress()->set_phase("starting");
    job.mutable_progress()->set_eta_seconds(-1);
    job.clear_error();
    std::vector<PgParam> params = RowParams(job);
    params.push_back(Text(owner));
    params.push_back(Text(absl::StrCat(absl::ToDoubleSeconds(lease))));
    QUANTD_ASSIGN_OR_RETURN(
        PgResult u, Exec(conn,
                         "UPDATE quantd_jobs SET state = $2::integer, priority = $3::integer,"
                         "  attempts = $4::integer, record = $5, revision = revision + 1,"
                         "  lease_owner = $6,"
                         "  lease_expires_at = now() + make_interval(secs => $7::float8),"
                         "  cancel_requested = false"
                         " WHERE job_id = $1 RETURNING revision::text",
                         params));
    revision = IntValue(u, 0, 0);
    QUANTD_RETURN_IF_ERROR(
        Exec(conn, "SELECT pg_notify($1, $2)", {Text(kNotifyChannel), Text(job.job_id())})
            .status());
    claimed = std::move(job);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (claimed) Dispatch(*claimed, revision);
  return claimed;
}

absl::Status PostgresJobStore::Heartbeat(const std::string& job_id, int attempt,
                                         absl::Duration lease, bool* cancel_requested) {
  auto r = pool_->With([&](PGconn* conn) {
    return Exec(conn,
                "UPDATE quantd_jobs"
                " SET lease_expires_at = now() + make_interval(secs => $3::float8)"
                " WHERE job_id = $1 AND state = 2 AND attempts = $2::integer"
                " RETURNING cancel_requested::text",
                {Text(job_id), Int(attempt), Text(absl::StrCat(absl::ToDoubleSeconds(lease)))});
  });
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) {
    return absl::AbortedError(absl::StrCat("job ", job_id, ": attempt ", attempt,
                                           " lost its lease (requeued or taken over)"));
  }
  *cancel_requested = Value(*r, 0, 0) == "true";
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> PostgresJobStore::RequeueExpired(int64_t now_ms) {
  std::vector<std::pair<v1::Job, int64_t>> changed;
  absl::Status st = InTransaction(pool_.get(), [&](PGconn* conn) -> absl::Status {
    changed.clear();
    QUANTD_ASSIGN_OR_RETURN(PgResult r,
                            Exec(conn,
                                 "SELECT record FROM quantd_jobs WHERE state = 2"
                                 " AND (lease_expires_at IS NULL OR lease_expires_at < now())"
                                 " ORDER BY sequence LIMIT 100 FOR UPDATE SKIP LOCKED"));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      absl::Status parse;
      v1::Job job = ParseJob(Value(r, i, 0), &parse);
      QUANTD_RETURN_IF_ERROR(parse);
      if (job.attempts() >= kMaxAttempts) {
        job.set_state(v1::JOB_STATE_FAILED);
        job.mutable_error()->set_code("ABORTED");
        job.mutable_error()->set_message(absl::StrCat(
            "the server running this job stopped (crash, kill or lost lease) ", job.attempts(),
            " times; not retrying. Check the server logs for this job id; "
            "the model or recipe may trigger a bug"));
        job.mutable_progress()->set_phase("failed");
        job.set_end_time_ms(now_ms);
      } else {
        job.set_state(v1::JOB_STATE_QUEUED);
        job.mutable_progress()->Clear();
        job.mutable_progress()->set_phase("requeued after its server stopped");
        job.mutable_progress()->set_eta_seconds(-1);
        job.set_start_time_ms(0);
      }
      QUANTD_ASSIGN_OR_RETURN(int64_t revision, WriteRow(conn, job));
      changed.emplace_back(std::move(job), revision);
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  std::vector<std::string> ids;
  for (const auto& [job, revision] : changed) {
    Dispatch(job, revision);
    if (job.state() == v1::JOB_STATE_QUEUED) ids.push_back(job.job_id());
  }
  return ids;
}

absl::Status PostgresJobStore::RequestCancel(const std::string& job_id) {
  return pool_
      ->With([&](PGconn* conn) {
        return Exec(conn,
                    "UPDATE quantd_jobs SET cancel_requested = true"
                    " WHERE job_id = $1 AND state = 2",
                    {Text(job_id)});
      })
      .status();
}

absl::StatusOr<int64_t> PostgresJobStore::QueueDepth() {
  auto r = pool_->With([&](PGconn* conn) {
    return Exec(conn, "SELECT count(*)::text FROM quantd_jobs WHERE state = 1");
  });
  if (!r.ok()) return r.status();
  return IntValue(*r, 0, 0);
}

// ----------------------------------------------------- upload reservations

namespace {
PgParam Seconds(absl::Duration d) { return Text(absl::StrCat(absl::ToDoubleSeconds(d))); }
}  // namespace

absl::Status PostgresJobStore::ReserveUpload(const std::string& upload_id, const std::string& owner,
                                             absl::Duration ttl) {
  auto r = pool_->With([&](PGconn* conn) {
    return Exec(conn,
                "INSERT INTO quantd_upload_reservations(upload_id, owner, expires_at)"
                " VALUES ($1, $2, now() + make_interval(secs => $3::float8))"
                " ON CONFLICT (upload_id) DO UPDATE"
                "  SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at"
                "  WHERE quantd_upload_reservations.expires_at < now()"
                " RETURNING upload_id",
                {Text(upload_id), Text(owner), Seconds(ttl)});
  });
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) {
    return absl::AbortedError(absl::StrCat("upload ", upload_id,
                                           " is being written by a stream on another server; "
                                           "wait and resume with GetUploadStatus"));
  }
  return absl::OkStatus();
}

void PostgresJobStore::ReleaseUpload(const std::string& upload_id, const std::string& owner) {
  (void)pool_->With([&](PGconn* conn) {
    return Exec(conn, "DELETE FROM quantd_upload_reservations WHERE upload_id = $1 AND owner = $2",
                {Text(upload_id), Text(owner)});
  });
}

absl::Status PostgresJobStore::RenewUploadReservations(const std::string& owner,
                                                       absl::Duration ttl) {
  return pool_
      ->With([&](PGconn* conn) {
        return Exec(conn,
                    "UPDATE quantd_upload_reservations"
                    " SET expires_at = now() + make_interval(secs => $2::float8)"
                    " WHERE owner = $1",
                    {Text(owner), Seconds(ttl)});
      })
      .status();
}

bool PostgresJobStore::IsUploadReserved(const std::string& upload_id) {
  auto r = pool_->With([&](PGconn* conn) {
    return Exec(conn,
                "SELECT 1 FROM quantd_upload_reservations"
                " WHERE upload_id = $1 AND expires_at > now()",
                {Text(upload_id)});
  });
  return !r.ok() || PQntuples(r->get()) > 0;  // unknown: keep the upload
}

bool PostgresJobStore::ClaimUploadSweep(absl::Duration period) {
  auto r = pool_->With([&](PGconn* conn) {
    return Exec(conn,
                "INSERT INTO quantd_maintenance(task, next_run)"
                " VALUES ('upload_sweep', now() + make_interval(secs => $1::float8))"
                " ON CONFLICT (task) DO UPDATE SET next_run = EXCLUDED.next_run"
                "  WHERE quantd_maintenance.next_run <= now()"
                " RETURNING task",
                {Seconds(period)});
  });
  return r.ok() && PQntuples(r->get()) == 1;
}

}  // namespace quantd::server
