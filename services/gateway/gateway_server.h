// RunGateway: the gateway process (`blockserve gateway`): starts the public
// gRPC server (NOT_SERVING), loads the tokenizer, waits until a context
// replica has told the model, serves until SIGTERM, then drains (refuses new
// requests, lets open ones finish within the grace period) and exits.
#ifndef BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_SERVER_H_
#define BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_SERVER_H_

#include <string>
#include <vector>

#include "services/common/server_runner.h"
#include "services/gateway/admission_controller.h"
#include "services/gateway/context_router.h"
#include "services/gateway/request_validation.h"

namespace blockserve::services {

struct GatewayServerOptions {
  ServerFlags server;
  std::vector<std::string> context_replicas;
  std::string tokenizer_path;  // empty: token ids only
  AdmissionController::Options admission;
  GatewayLimits limits;
  ContextRouter::Options router;
  int threads = 2;  // tokenization threads
  double max_request_seconds = 600.0;
};

// Returns the process exit status (0 after a clean drain, 1 on failure).
int RunGateway(const GatewayServerOptions& options);

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_SERVER_H_
