#include "context.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace quantd::quantctl {

CommandContext::CommandContext(GlobalOptions options)
    : options_(std::move(options)), progress_(ProgressRenderer::Detect(options_.quiet), stderr) {}

absl::StatusOr<Session*> CommandContext::session() {
  if (session_ == nullptr) {
    auto s = Session::Open(options_.session);
    if (!s.ok()) return s.status();
    session_ = *std::move(s);
  }
  return session_.get();
}

void CommandContext::PrintJson(const std::string& json) {
  progress_.Finish();
  std::fprintf(stdout, "%s\n", json.c_str());
  std::fflush(stdout);
  printed_json_ = true;
}

void CommandContext::Print(const std::string& line) {
  if (options_.json) return;
  progress_.Finish();
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

absl::StatusOr<std::map<std::string, std::string>> ParseLabels(
    const std::vector<std::string>& flags) {
  std::map<std::string, std::string> labels;
  for (const auto& f : flags) {
    size_t eq = f.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--label '", f, "': expected KEY=VALUE"));
    }
    labels[f.substr(0, eq)] = f.substr(eq + 1);
  }
  return labels;
}

}  // namespace quantd::quantctl
