// `quantd serve`: parses the configuration and runs the service.
#include <malloc.h>

#include <cstdlib>
#include <iostream>

#include "quantd/server/commands.h"
#include "quantd/server/config.h"
#include "quantd/server/logger.h"
#include "quantd/server/server.h"

#ifndef QUANTD_VERSION
#define QUANTD_VERSION "dev"
#endif

namespace quantd::server {

int ServeCommand(const std::vector<std::string>& args) {
  ServeConfig config;
  bool help = false;
  absl::Status st = ParseServeConfig(
      args, [](const char* name) { return std::getenv(name); }, &config, &help);
  if (help) {
    std::cout << ServeHelp();
    return 0;
  }
  if (!st.ok()) {
    std::cerr << "quantd serve: " << st.message() << "\n";
    return 2;
  }
  auto level = Logger::ParseLevel(config.log_level);
  if (!level.ok()) {
    std::cerr << "quantd serve: --log-level: " << level.status().message() << "\n";
    return 2;
  }
  // Transfers allocate and free ~1 MiB buffers per message; keep them in
  // the heap instead of fresh (kernel-zeroed) mmap pages each time.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  Logger logger(stderr, *level);
  st = RunServer(config, QUANTD_VERSION, &logger);
  if (!st.ok()) {
    logger.Error("quantd serve failed", {{"error", st.ToString()}});
    return 1;
  }
  return 0;
}

}  // namespace quantd::server
