#include "services/gateway/gateway_server.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#include "services/gateway/gateway_context.h"
#include "services/gateway/gateway_service.h"
#include "shared/common/logging.h"
#include "shared/metrics/metrics_registry.h"

namespace blockserve::services {

int RunGateway(const GatewayServerOptions& options) {
  if (options.context_replicas.empty()) {
    LOG(ERROR) << "gateway: no context service replica given (--context)";
    return 1;
  }
  // The tokenizer first: it is quick to load and every handler reads it.
  std::unique_ptr<Tokenizer> tokenizer;
  if (!options.tokenizer_path.empty()) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> loaded = Tokenizer::FromFile(options.tokenizer_path);
    if (!loaded.ok()) {
      LOG(ERROR) << "gateway: " << loaded.status();
      return 1;
    }
    tokenizer = *std::move(loaded);
  }
  metrics::MetricsRegistry registry;
  GatewayMetrics gateway_metrics(registry);
  ServingState state;
  AdmissionController admission(options.admission);
  ContextRouter router(options.context_replicas, options.router, &gateway_metrics);
  ThreadPool pool(options.threads);
  GatewayContext gateway;
  gateway.state = &state;
  gateway.admission = &admission;
  gateway.router = &router;
  gateway.pool = &pool;
  gateway.metrics = &gateway_metrics;
  gateway.tokenizer = tokenizer.get();
  gateway.limits = options.limits;
  gateway.max_request_seconds = options.max_request_seconds;
  GatewayService service(&gateway);

  auto runner = ServerRunner::Start({.role = "gateway", .flags = options.server}, {&service},
                                    &state, &registry);
  if (!runner.ok()) {
    LOG(ERROR) << "gateway: " << runner.status();
    return 1;
  }
  // Ready once a replica has told the model (and is answering).
  while (!router.WaitForModel(0.2)) {
    if ((*runner)->stop_requested()) {
      LOG(WARNING) << "gateway: stopped before any context replica answered";
      return (*runner)->Wait({});
    }
  }
  const v1::ModelInfo model = *router.model();
  if (tokenizer != nullptr && tokenizer->vocab_size() > model.vocab_size()) {
    LOG(WARNING) << "gateway: the tokenizer has " << tokenizer->vocab_size()
                 << " ids but the model only " << model.vocab_size()
                 << ": prompts with larger ids will be refused";
  }
  (*runner)->SetServing(true);
  LOG(INFO) << "gateway: serving " << model.name() << " through " << options.context_replicas.size()
            << " context replica(s)" << (tokenizer ? "" : " (no tokenizer: token ids only)");
  ServerRunner::Hooks hooks;
  hooks.idle = [&] { return gateway.live_calls.load() == 0; };
  const int code = (*runner)->Wait(hooks);
  // Calls cancelled by the shutdown finish their upstream halves promptly;
  // the objects they use must outlive them.
  for (int i = 0; i < 1000 && gateway.live_calls.load() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (gateway.live_calls.load() > 0) {
    LOG(ERROR) << "gateway: " << gateway.live_calls.load() << " calls did not finish; exiting";
    std::_Exit(code);
  }
  return code;
}

}  // namespace blockserve::services
