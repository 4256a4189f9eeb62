// The `quantd` subcommands. Each takes the arguments after its name and
// returns the process exit code (0 ok, 1 failure, 2 usage error).
#ifndef QUANTD_SERVER_COMMANDS_H_
#define QUANTD_SERVER_COMMANDS_H_

#include <string>
#include <vector>

namespace quantd::server {

// quantd quantize INPUT -o OUTPUT [recipe flags] [--report FILE] [--json] [--quiet]
int QuantizeCommand(const std::vector<std::string>& args);
// quantd presets
int PresetsCommand(const std::vector<std::string>& args);
// quantd serve [flags]
int ServeCommand(const std::vector<std::string>& args);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_COMMANDS_H_
