// The one mapping between absl::Status and grpc::Status, and the code and
// outcome names that label the request metrics.
#include "services/common/status_mapping.h"

#include "gtest/gtest.h"

namespace blockserve::services {
namespace {

TEST(StatusMappingTest, CodesAndMessagesSurviveTheRoundTrip) {
  for (int code = 0; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), code ? "what went wrong" : "");
    const grpc::Status grpc_status = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(grpc_status.error_code()), code);
    EXPECT_EQ(FromGrpcStatus(grpc_status), status) << code;
  }
}

TEST(StatusMappingTest, CodeNamesAreTheCanonicalOnes) {
  EXPECT_EQ(StatusCodeName(absl::StatusCode::kOk), "OK");
  EXPECT_EQ(StatusCodeName(absl::StatusCode::kInvalidArgument), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(absl::StatusCode::kResourceExhausted), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::UNAVAILABLE), "UNAVAILABLE");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
  // The same names on both sides, for every code.
  for (int code = 0; code <= 16; ++code) {
    EXPECT_EQ(StatusCodeName(static_cast<absl::StatusCode>(code)),
              StatusCodeName(static_cast<grpc::StatusCode>(code)));
  }
}

TEST(StatusMappingTest, OutcomesFollowTheFinishReasonOrTheError) {
  EXPECT_EQ(RequestOutcome(FinishReason::kLength, absl::OkStatus(), false), "length");
  EXPECT_EQ(RequestOutcome(FinishReason::kStop, absl::OkStatus(), false), "stop");
  EXPECT_EQ(RequestOutcome(FinishReason::kCancelled, absl::OkStatus(), false), "cancelled");
  EXPECT_EQ(RequestOutcome(FinishReason::kError, absl::CancelledError(), false), "cancelled");
  EXPECT_EQ(RequestOutcome(FinishReason::kError, absl::UnavailableError("x"), false), "error");
  EXPECT_EQ(RequestOutcome(FinishReason::kError, absl::InvalidArgumentError("x"), true),
            "rejected");
}

TEST(StatusMappingTest, EngineFailuresAlwaysCarryAnError) {
  EXPECT_TRUE(FinalStatus(FinishReason::kEos, absl::OkStatus()).ok());
  EXPECT_EQ(FinalStatus(FinishReason::kError, absl::OkStatus()).code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(FinalStatus(FinishReason::kError, absl::UnavailableError("no worker")).code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace blockserve::services
