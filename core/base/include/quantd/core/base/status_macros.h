// Small status-propagation macros (Abseil 20220623 ships none).
//
//   QUANTD_RETURN_IF_ERROR(expr);            // returns the status if not OK
//   QUANTD_ASSIGN_OR_RETURN(auto x, expr);   // unwraps a StatusOr or returns
#ifndef QUANTD_CORE_BASE_STATUS_MACROS_H_
#define QUANTD_CORE_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define QUANTD_STATUS_CONCAT_INNER_(a, b) a##b
#define QUANTD_STATUS_CONCAT_(a, b) QUANTD_STATUS_CONCAT_INNER_(a, b)

#define QUANTD_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status quantd_status_ = (expr);          \
    if (!quantd_status_.ok()) return quantd_status_; \
  } while (0)

#define QUANTD_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

#define QUANTD_ASSIGN_OR_RETURN(lhs, expr) \
  QUANTD_ASSIGN_OR_RETURN_IMPL_(QUANTD_STATUS_CONCAT_(quantd_statusor_, __LINE__), lhs, expr)

#endif  // QUANTD_CORE_BASE_STATUS_MACROS_H_
