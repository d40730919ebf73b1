// GatewayService: the public Generation service (callback API). Generate is
// a GenerateCall; Tokenize and Detokenize run on the work pool (never in the
// reaction); GetModelInfo answers from the router's cached model info.
// Errors map through services/common/status_mapping.h.
//
// Thread-safe; the GatewayContext must outlive the service's calls.
#ifndef BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_SERVICE_H_
#define BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_SERVICE_H_

#include "blockserve/v1/generation.grpc.pb.h"
#include "services/gateway/gateway_context.h"

namespace blockserve::services {

class GatewayService final : public v1::Generation::CallbackService {
 public:
  explicit GatewayService(GatewayContext* gateway) : gateway_(gateway) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::GetModelInfoResponse* response) override;

 private:
  // Finishes a unary call with `status` and counts it.
  void FinishUnary(grpc::ServerUnaryReactor* reactor, absl::string_view method,
                   const absl::Status& status);

  GatewayContext* const gateway_;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_SERVICE_H_
