// RunContextService: the context service process (`blockserve context`):
// starts the gRPC server (NOT_SERVING; ContextService and ContextAdmin),
// loads the embedder and block decoder, connects to the token workers (a
// static set, or DNS names re-resolved by WorkerDiscovery), warms up with
// one block-decoder
// pass, serves until SIGTERM, then drains (refuses new sessions, lets open
// ones finish within the grace period) and exits.
#ifndef BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_SERVER_H_
#define BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_SERVER_H_

#include <set>
#include <string>

#include "services/common/server_runner.h"
#include "services/common/service_model.h"
#include "services/context/context_engine.h"
#include "services/context/worker_discovery.h"
#include "services/context/worker_pool.h"

namespace blockserve::services {

struct ContextServerOptions {
  ServerFlags server;
  ContextEngine::Options engine;
  WorkerPool::Options pool;
  WorkerTargets workers;  // --workers: addresses and DNS names
  double worker_resolve_interval_s = 5.0;
  // ContextAdmin answers callers on any address, not only this machine's.
  bool admin_any_peer = false;
};

// Returns the process exit status (0 after a clean drain, 1 on failure).
int RunContextService(const ContextServerOptions& options, const ModelLoader& load_model);

// Parses "HOST:PORT,HOST:PORT" (spaces allowed); INVALID_ARGUMENT naming
// the flag for an empty list or entry.
absl::StatusOr<std::set<std::string>> ParseAddressList(const std::string& text,
                                                       const std::string& flag);

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_SERVER_H_
