// Placeholder until the service issue lands.
#include <iostream>

#include "quantd/server/commands.h"

namespace quantd::server {

int ServeCommand(const std::vector<std::string>& args) {
  std::cerr << "quantd serve: the gRPC service is not built yet (issue 4)\n";
  return 1;
}

}  // namespace quantd::server
