// PostgresServer: a throw-away PostgreSQL server for tests — initdb into a
// fresh temporary directory, pg_ctl start on a free loopback port (trust
// authentication, no fsync), stopped and deleted by the destructor. Needs
// the Debian `postgresql` package (binaries in /usr/lib/postgresql/15/bin,
// or $QUANTD_PG_BIN); Start fails, it does not skip, when they are missing.
// As root, the server runs as the `postgres` user (initdb refuses root).
//
// Thread safety: not thread-safe; one test owns it.
#ifndef QUANTD_TESTING_POSTGRES_SERVER_H_
#define QUANTD_TESTING_POSTGRES_SERVER_H_

#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace quantd::testing {

class PostgresServer {
 public:
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start() {
    const char* env_bin = std::getenv("QUANTD_PG_BIN");
    const std::string bin = env_bin != nullptr ? env_bin : "/usr/lib/postgresql/15/bin";
    if (::access((bin + "/initdb").c_str(), X_OK) != 0 ||
        ::access((bin + "/pg_ctl").c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("PostgreSQL server binaries not found in ", bin,
                       " (install the Debian package postgresql: scripts/setup.sh)"));
    }
    char tmpl[] = "/tmp/quantd-pg-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
    std::unique_ptr<PostgresServer> s(new PostgresServer(bin, tmpl));
    std::string as_user;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr)
        return absl::FailedPreconditionError("running as root and no postgres user");
      if (::chown(tmpl, pw->pw_uid, pw->pw_gid) != 0) return absl::InternalError("chown failed");
      as_user = "runuser -u postgres -- ";
    }
    s->port_ = FreePort();
    const std::string log = s->dir_ + "/server.log";
    std::string cmd = absl::StrCat(as_user, bin, "/initdb -D ", s->dir_,
                                   "/data -U quantd --auth=trust -E UTF8 --no-sync >", s->dir_,
                                   "/initdb.log 2>&1");
    if (std::system(cmd.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("initdb failed; see ", s->dir_, "/initdb.log"));
    }
    cmd = absl::StrCat(as_user, bin, "/pg_ctl -D ", s->dir_, "/data -l ", log, " -w -t 60 -o \"-p ",
                       s->port_, " -k ", s->dir_,
                       " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start "
                       ">/dev/null 2>&1");
    if (std::system(cmd.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("pg_ctl start failed; see ", log));
    }
    s->as_user_ = as_user;
    s->started_ = true;
    return s;
  }

  ~PostgresServer() {
    if (started_) {
      std::string cmd = absl::StrCat(as_user_, bin_, "/pg_ctl -D ", dir_,
                                     "/data -m immediate -w stop >/dev/null 2>&1");
      (void)std::system(cmd.c_str());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  int port() const { return port_; }

  // A URI for database `db` (CreateDatabase it first, or "postgres").
  std::string Dsn(const std::string& db) const {
    return absl::StrCat("postgresql://quantd@127.0.0.1:", port_, "/", db);
  }

  // Runs one SQL statement in database `db`.
  absl::Status Exec(const std::string& db, const std::string& sql) const {
    PGconn* conn = PQconnectdb(Dsn(db).c_str());
    absl::Status st;
    if (PQstatus(conn) != CONNECTION_OK) {
      st = absl::UnavailableError(PQerrorMessage(conn));
    } else {
      PGresult* r = PQexec(conn, sql.c_str());
      if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        st = absl::InternalError(absl::StrCat(sql, ": ", PQresultErrorMessage(r)));
      }
      PQclear(r);
    }
    PQfinish(conn);
    return st;
  }

  // Runs a query that returns one value; the value as text.
  absl::StatusOr<std::string> QueryValue(const std::string& db, const std::string& sql) const {
    PGconn* conn = PQconnectdb(Dsn(db).c_str());
    absl::StatusOr<std::string> out = absl::UnavailableError(PQerrorMessage(conn));
    if (PQstatus(conn) == CONNECTION_OK) {
      PGresult* r = PQexec(conn, sql.c_str());
      if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        out = std::string(PQgetvalue(r, 0, 0));
      } else {
        out = absl::InternalError(absl::StrCat(sql, ": ", PQresultErrorMessage(r)));
      }
      PQclear(r);
    }
    PQfinish(conn);
    return out;
  }

  absl::Status CreateDatabase(const std::string& name) const {
    return Exec("postgres", absl::StrCat("CREATE DATABASE ", name));
  }

 private:
  PostgresServer(std::string bin, std::string dir) : bin_(std::move(bin)), dir_(std::move(dir)) {}

  static int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    return port;
  }

  const std::string bin_;
  const std::string dir_;
  std::string as_user_;
  int port_ = 0;
  bool started_ = false;
};

}  // namespace quantd::testing

#endif  // QUANTD_TESTING_POSTGRES_SERVER_H_
