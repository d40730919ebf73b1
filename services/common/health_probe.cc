#include "services/common/health_probe.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace blockserve::services {
namespace {

std::chrono::system_clock::time_point DeadlineIn(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
}

}  // namespace

HealthState ProbeHealth(const std::string& address, double timeout_s) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(timeout_s));
  context.set_wait_for_ready(true);  // a server still binding is not "down"
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, {}, &response);
  if (!status.ok()) return HealthState::kUnreachable;
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
             ? HealthState::kServing
             : HealthState::kNotServing;
}

absl::Status WaitUntilServing(const std::string& address, double timeout_s,
                              const std::function<bool()>& keep_waiting) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6));
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  HealthState last = HealthState::kUnreachable;
  while (std::chrono::steady_clock::now() < deadline) {
    if (keep_waiting && !keep_waiting()) {
      return absl::AbortedError(absl::StrCat("stopped waiting for ", address));
    }
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(0.5));
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status status = stub->Check(&context, {}, &response);
    if (status.ok()) {
      if (response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
        return absl::OkStatus();
      }
      last = HealthState::kNotServing;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      address, " did not become SERVING within ", timeout_s,
      " s (last seen: ", last == HealthState::kNotServing ? "NOT_SERVING" : "unreachable", ")"));
}

}  // namespace blockserve::services
