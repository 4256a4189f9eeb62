#include "quantd/server/rpc_interceptor.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace quantd::server {
namespace {

class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(std::string method, Metrics* metrics, Logger* logger, Clock* clock)
      : method_(std::move(method)),
        metrics_(metrics),
        logger_(logger),
        clock_(clock),
        start_(clock->NowSteadySeconds()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      const std::string code =
          absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
      const double seconds = clock_->NowSteadySeconds() - start_;
      metrics_->RpcFinished(method_, code, seconds);
      if (!status.ok()) {
        logger_->Info("rpc failed", {{"method", method_},
                                     {"code", code},
                                     {"message", status.error_message()},
                                     {"seconds", absl::StrCat(seconds)}});
      }
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  Metrics* const metrics_;
  Logger* const logger_;
  Clock* const clock_;
  const double start_;
};

}  // namespace

grpc::experimental::Interceptor* RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  // "/quantd.v1.Quantd/SubmitJob" -> "SubmitJob": bounded label values.
  std::string method = info->method() ? info->method() : "unknown";
  if (auto slash = method.rfind('/'); slash != std::string::npos) method = method.substr(slash + 1);
  return new RpcMetricsInterceptor(std::move(method), metrics_, logger_, clock_);
}

}  // namespace quantd::server
