// Logger: structured JSON-lines logs ({"ts":..., "level":..., "msg":...,
// plus fields such as job_id}), one line per event, to a FILE* (stderr by
// default). Passed by pointer to the parts that log; no global logger.
//
// Thread safety: all methods are safe to call from any thread; lines never
// interleave.
#ifndef QUANTD_SERVER_LOGGER_H_
#define QUANTD_SERVER_LOGGER_H_

#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace quantd::server {

class Logger {
 public:
  enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
  using Field = std::pair<absl::string_view, std::string>;

  // `out` is not owned and must outlive the logger.
  explicit Logger(FILE* out = stderr, Level min_level = Level::kInfo)
      : out_(out), min_level_(min_level) {}
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void Log(Level level, absl::string_view msg, std::initializer_list<Field> fields = {});
  void Debug(absl::string_view msg, std::initializer_list<Field> f = {}) {
    Log(Level::kDebug, msg, f);
  }
  void Info(absl::string_view msg, std::initializer_list<Field> f = {}) {
    Log(Level::kInfo, msg, f);
  }
  void Warning(absl::string_view msg, std::initializer_list<Field> f = {}) {
    Log(Level::kWarning, msg, f);
  }
  void Error(absl::string_view msg, std::initializer_list<Field> f = {}) {
    Log(Level::kError, msg, f);
  }

  static absl::StatusOr<Level> ParseLevel(absl::string_view s);

 private:
  FILE* const out_;
  const Level min_level_;
  absl::Mutex mu_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_LOGGER_H_
