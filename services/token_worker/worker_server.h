// RunTokenWorker: the token worker process (`blockserve worker`): starts the
// gRPC server (NOT_SERVING), loads the token decoder, warms it up with one
// block, serves until SIGTERM, then drains (tells its context services to
// send nothing new, finishes the blocks it holds within the grace period)
// and exits.
#ifndef BLOCKSERVE_SERVICES_TOKEN_WORKER_WORKER_SERVER_H_
#define BLOCKSERVE_SERVICES_TOKEN_WORKER_WORKER_SERVER_H_

#include "services/common/server_runner.h"
#include "services/common/service_model.h"
#include "services/token_worker/worker_engine.h"

namespace blockserve::services {

struct WorkerServerOptions {
  ServerFlags server;
  WorkerEngine::Options engine;
};

// Returns the process exit status (0 after a clean drain, 1 on failure).
int RunTokenWorker(const WorkerServerOptions& options, const ModelLoader& load_model);

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_TOKEN_WORKER_WORKER_SERVER_H_
