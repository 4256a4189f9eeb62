#include "quantd/server/logger.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "quantd/core/base/json_writer.h"

namespace quantd::server {
namespace {

const char* LevelName(Logger::Level level) {
  switch (level) {
    case Logger::Level::kDebug:
      return "debug";
    case Logger::Level::kInfo:
      return "info";
    case Logger::Level::kWarning:
      return "warning";
    case Logger::Level::kError:
      return "error";
  }
  return "info";
}

}  // namespace

absl::StatusOr<Logger::Level> Logger::ParseLevel(absl::string_view s) {
  std::string v = absl::AsciiStrToLower(s);
  if (v == "debug") return Level::kDebug;
  if (v == "info") return Level::kInfo;
  if (v == "warning" || v == "warn") return Level::kWarning;
  if (v == "error") return Level::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level '", s, "'; use debug, info, warning or error"));
}

void Logger::Log(Level level, absl::string_view msg, std::initializer_list<Field> fields) {
  if (level < min_level_) return;
  core::JsonWriter w;
  w.BeginObject();
  w.Field("ts", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()));
  w.Field("level", LevelName(level));
  w.Field("msg", msg);
  for (const Field& f : fields) w.Field(f.first, f.second);
  w.EndObject();
  std::string line = w.str();
  line.push_back('\n');
  absl::MutexLock lock(&mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace quantd::server
