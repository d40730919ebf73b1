// The one place where Blockserve's errors become gRPC statuses and back.
//
// absl::Status and grpc::Status share the canonical code space, so the
// mapping keeps codes and messages as they are; what this file adds is one
// definition of the code names that label the failure metrics
// (blockserve_*_requests_total{code=...}) and of the outcome of a request
// (its finish reason, or "error" / "rejected"), so logs, statuses and
// metrics always agree. Engine failures (FinishReason::kError) carry their
// status and map through here like any other error.
//
// Pure functions; thread-safe.
#ifndef BLOCKSERVE_SERVICES_COMMON_STATUS_MAPPING_H_
#define BLOCKSERVE_SERVICES_COMMON_STATUS_MAPPING_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"
#include "shared/engine/request.h"

namespace blockserve::services {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// "OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", ... (the canonical names;
// "UNKNOWN" for a code outside the canonical range). The `code` label value
// of every request counter.
absl::string_view StatusCodeName(absl::StatusCode code);
absl::string_view StatusCodeName(grpc::StatusCode code);

// The `outcome` label of a finished request: the finish reason's name
// ("length", "eos", "stop", "cancelled") when it ended normally, "rejected"
// when it was refused before any work (INVALID_ARGUMENT, RESOURCE_EXHAUSTED,
// UNAVAILABLE at admission), else "error".
absl::string_view RequestOutcome(FinishReason reason, const absl::Status& status,
                                 bool rejected_before_work);

// A status for a generation that ended with `reason` and `status` (the
// engine's final update): OK for normal ends and for cancellations the
// caller asked for, the update's status (or INTERNAL if it is missing) for
// kError.
absl::Status FinalStatus(FinishReason reason, const absl::Status& status);

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_COMMON_STATUS_MAPPING_H_
