// quantctl's commands: each parses its own arguments, talks to the server
// through the context's Session and prints its result (human text, or one
// JSON object with --json). A non-OK status becomes the exit code in main
// (see exit_codes.h).
#ifndef QUANTD_CLIENT_QUANTCTL_COMMANDS_H_
#define QUANTD_CLIENT_QUANTCTL_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "context.h"

namespace quantd::quantctl {

using CommandFn = absl::Status (*)(CommandContext& ctx, const std::vector<std::string>& args);

struct Command {
  const char* name;
  const char* summary;  // one line for `quantctl --help`
  const char* help;     // full `quantctl NAME --help` text (usage, flags, examples)
  bool recipe_flags;    // the help lists the recipe flags too
  CommandFn run;
};

// Every command, in help order.
const std::vector<Command>& Commands();
const Command* FindCommand(const std::string& name);

// The full help text of `command`.
std::string CommandHelp(const Command& command);

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_COMMANDS_H_
