#include "services/context/context_admin_client.h"

#include <chrono>
#include <memory>

#include "blockserve/v1/context_admin.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "services/common/status_mapping.h"

namespace blockserve::services {
namespace {

std::unique_ptr<v1::ContextAdmin::Stub> Stub(const std::string& address) {
  return v1::ContextAdmin::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

void SetDeadline(grpc::ClientContext& context, double timeout_s) {
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6)));
}

}  // namespace

absl::StatusOr<v1::WorkersResponse> SetContextWorkers(const std::string& context_address,
                                                      const std::set<std::string>& workers,
                                                      double timeout_s) {
  v1::SetWorkersRequest request;
  for (const std::string& worker : workers) request.add_addresses(worker);
  v1::WorkersResponse response;
  grpc::ClientContext context;
  SetDeadline(context, timeout_s);
  const grpc::Status status = Stub(context_address)->SetWorkers(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::WorkersResponse> ListContextWorkers(const std::string& context_address,
                                                       double timeout_s) {
  v1::WorkersResponse response;
  grpc::ClientContext context;
  SetDeadline(context, timeout_s);
  const grpc::Status status =
      Stub(context_address)->ListWorkers(&context, v1::ListWorkersRequest(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::Status AnnounceContextDrain(const std::string& context_address, double timeout_s) {
  v1::AnnounceDrainResponse response;
  grpc::ClientContext context;
  SetDeadline(context, timeout_s);
  return FromGrpcStatus(
      Stub(context_address)->AnnounceDrain(&context, v1::AnnounceDrainRequest(), &response));
}

}  // namespace blockserve::services
