// CommandContext: what every quantctl command gets — the global options, the
// lazily opened Session, the progress renderer and the stdout writer that
// remembers whether a JSON result was printed.
//
// Thread safety: used by the command's thread; session() is also handed to
// the Interrupter's handler thread (Session is thread-safe).
#ifndef QUANTD_CLIENT_QUANTCTL_CONTEXT_H_
#define QUANTD_CLIENT_QUANTCTL_CONTEXT_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "progress.h"
#include "session.h"

namespace quantd::quantctl {

struct GlobalOptions {
  SessionOptions session;
  bool json = false;   // machine-readable result on stdout
  bool quiet = false;  // no progress, no human summary beyond the result
};

class CommandContext {
 public:
  explicit CommandContext(GlobalOptions options);

  const GlobalOptions& options() const { return options_; }
  bool json() const { return options_.json; }
  bool quiet() const { return options_.quiet; }

  // Opens the connection on first use.
  absl::StatusOr<Session*> session();
  ProgressRenderer& progress() { return progress_; }

  // Prints the command's JSON result (one line) on stdout.
  void PrintJson(const std::string& json);
  // Prints a human line on stdout (not with --json).
  void Print(const std::string& line);
  bool printed_json() const { return printed_json_; }

 private:
  const GlobalOptions options_;
  std::unique_ptr<Session> session_;
  ProgressRenderer progress_;
  bool printed_json_ = false;
};

// "k=v" flags to a map. InvalidArgument for a flag without '='.
absl::StatusOr<std::map<std::string, std::string>> ParseLabels(
    const std::vector<std::string>& flags);

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_CONTEXT_H_
