#include "services/common/status_mapping.h"

#include <string>

namespace blockserve::services {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const int code = static_cast<int>(status.error_code());
  const absl::StatusCode absl_code =
      code >= 0 && code <= 16 ? static_cast<absl::StatusCode>(code) : absl::StatusCode::kUnknown;
  return absl::Status(absl_code, status.error_message());
}

absl::string_view StatusCodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "OK";
    case absl::StatusCode::kCancelled:
      return "CANCELLED";
    case absl::StatusCode::kUnknown:
      return "UNKNOWN";
    case absl::StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case absl::StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case absl::StatusCode::kNotFound:
      return "NOT_FOUND";
    case absl::StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case absl::StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case absl::StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case absl::StatusCode::kAborted:
      return "ABORTED";
    case absl::StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case absl::StatusCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case absl::StatusCode::kInternal:
      return "INTERNAL";
    case absl::StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case absl::StatusCode::kDataLoss:
      return "DATA_LOSS";
    case absl::StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

absl::string_view StatusCodeName(grpc::StatusCode code) {
  const int value = static_cast<int>(code);
  if (value < 0 || value > 16) return "UNKNOWN";
  return StatusCodeName(static_cast<absl::StatusCode>(value));
}

absl::string_view RequestOutcome(FinishReason reason, const absl::Status& status,
                                 bool rejected_before_work) {
  if (rejected_before_work) return "rejected";
  if (reason == FinishReason::kCancelled || status.code() == absl::StatusCode::kCancelled) {
    return "cancelled";
  }
  if (!status.ok() || reason == FinishReason::kError || reason == FinishReason::kNone) {
    return "error";
  }
  return FinishReasonName(reason);
}

absl::Status FinalStatus(FinishReason reason, const absl::Status& status) {
  if (reason != FinishReason::kError) return status;
  if (!status.ok()) return status;
  return absl::InternalError("generation failed without a status");
}

}  // namespace blockserve::services
