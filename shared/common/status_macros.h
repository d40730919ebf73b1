// Status propagation macros for absl::Status / absl::StatusOr.
//
// Abseil 20220623 (Debian 12) ships no status_macros.h, so the project keeps
// its own two macros here, in one place:
//
//   RETURN_IF_ERROR(DoThing());           // returns the status if not OK
//   ASSIGN_OR_RETURN(auto x, MakeThing()); // unwraps a StatusOr or returns
//
// Both evaluate their argument exactly once. Thread-safe as the expressions
// they wrap.
#ifndef BLOCKSERVE_SHARED_COMMON_STATUS_MACROS_H_
#define BLOCKSERVE_SHARED_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define BS_STATUS_CONCAT_INNER_(a, b) a##b
#define BS_STATUS_CONCAT_(a, b) BS_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                              \
  do {                                                     \
    ::absl::Status bs_status_ = (expr);                    \
    if (!bs_status_.ok()) return bs_status_;               \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, rexpr) \
  BS_ASSIGN_OR_RETURN_IMPL_(BS_STATUS_CONCAT_(bs_statusor_, __LINE__), lhs, rexpr)

#define BS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // BLOCKSERVE_SHARED_COMMON_STATUS_MACROS_H_
