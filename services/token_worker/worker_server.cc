#include "services/token_worker/worker_server.h"

#include <filesystem>

#include "services/common/proto_convert.h"
#include "services/token_worker/token_worker_service.h"
#include "services/token_worker/worker_metrics.h"
#include "shared/common/logging.h"
#include "shared/metrics/metrics_registry.h"

namespace blockserve::services {

int RunTokenWorker(const WorkerServerOptions& options, const ModelLoader& load_model) {
  metrics::MetricsRegistry registry;
  WorkerMetrics worker_metrics(registry);
  ServingState state;
  TokenWorkerService service(&state);
  auto runner = ServerRunner::Start({.role = "worker", .flags = options.server}, {&service}, &state,
                                    &registry);
  if (!runner.ok()) {
    LOG(ERROR) << "worker: " << runner.status();
    return 1;
  }
  absl::StatusOr<ServiceModel> model = load_model(TokenDecoderOnly());
  if (!model.ok()) {
    LOG(ERROR) << "worker: cannot load the model: " << model.status();
    return 1;
  }
  if (!model->model->is_block() || model->model->token_decoder() == nullptr) {
    LOG(ERROR) << "worker: " << model->model->directory()
               << " is not a Block Transformer: token workers serve only block models";
    return 1;
  }
  const TokenDecoder& decoder = *model->model->token_decoder();
  auto engine = WorkerEngine::Create(decoder, *model->backend, options.engine, &worker_metrics);
  if (!engine.ok()) {
    LOG(ERROR) << "worker: " << engine.status();
    return 1;
  }
  if (absl::Status warm = (*engine)->WarmUp(decoder.context_size()); !warm.ok()) {
    LOG(ERROR) << "worker: warm-up failed: " << warm;
    return 1;
  }
  v1::ModelInfo info;
  ToProto(model->model->config(),
          std::filesystem::path(model->model->directory()).filename().string(), &info);
  service.SetEngine(engine->get(), info);
  (*runner)->SetServing(true);
  LOG(INFO) << "worker: serving " << model->model->directory() << " on "
            << model->backend->Describe();
  WorkerEngine* worker = engine->get();
  return (*runner)->Wait({.on_drain = [worker] { worker->SetDraining(); },
                          .idle = [worker] { return worker->outstanding() == 0; },
                          .stop = [worker] { worker->Shutdown(); }});
}

}  // namespace blockserve::services
