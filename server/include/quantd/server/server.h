// RunServer: `quantd serve` wiring. Opens the parts in order (blob store,
// journal, job store + recovery, metrics, worker pool, gRPC service with
// health and reflection), serves until SIGTERM/SIGINT, then drains.
//
// Thread safety: call once per process (it owns the signal mask).
#ifndef QUANTD_SERVER_SERVER_H_
#define QUANTD_SERVER_SERVER_H_

#include <string>

#include "absl/status/status.h"
#include "quantd/server/config.h"
#include "quantd/server/logger.h"

namespace quantd::server {

// Blocks until a termination signal; OK after a clean drain.
absl::Status RunServer(const ServeConfig& config, const std::string& version, Logger* logger);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_SERVER_H_
