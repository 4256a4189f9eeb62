// RpcMetricsInterceptor: records every finished RPC (method, status code,
// latency) through Metrics and logs failed calls, for all services on the
// server (quantd.v1, health, reflection).
//
// Thread safety: one interceptor per call; the factory is thread-safe.
#ifndef QUANTD_SERVER_RPC_INTERCEPTOR_H_
#define QUANTD_SERVER_RPC_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include "quantd/server/clock.h"
#include "quantd/server/logger.h"
#include "quantd/server/metrics.h"

namespace quantd::server {

class RpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // Not owned; must outlive the server.
  RpcMetricsInterceptorFactory(Metrics* metrics, Logger* logger, Clock* clock)
      : metrics_(metrics), logger_(logger), clock_(clock) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  Metrics* const metrics_;
  Logger* const logger_;
  Clock* const clock_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_RPC_INTERCEPTOR_H_
