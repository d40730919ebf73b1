// TokenWorkerService: the gRPC TokenWorker service (callback API). Thin: it
// refuses streams while the worker is not ready or is draining
// (UNAVAILABLE) and otherwise hands each stream to a DecodeStream over the
// WorkerEngine.
//
// Thread-safe: SetEngine() may race with incoming calls.
#ifndef BLOCKSERVE_SERVICES_TOKEN_WORKER_TOKEN_WORKER_SERVICE_H_
#define BLOCKSERVE_SERVICES_TOKEN_WORKER_TOKEN_WORKER_SERVICE_H_

#include <atomic>
#include <mutex>

#include "blockserve/v1/token_worker.grpc.pb.h"
#include "services/common/serving_state.h"
#include "services/token_worker/worker_engine.h"

namespace blockserve::services {

class TokenWorkerService final : public v1::TokenWorker::CallbackService {
 public:
  explicit TokenWorkerService(ServingState* state) : state_(state) {}

  // Makes the worker ready; `engine` must outlive the service's calls.
  void SetEngine(WorkerEngine* engine, const v1::ModelInfo& model);

  grpc::ServerBidiReactor<v1::WorkerRequest, v1::WorkerReply>* DecodeBlocks(
      grpc::CallbackServerContext* context) override;

 private:
  ServingState* const state_;
  std::mutex mutex_;
  WorkerEngine* engine_ = nullptr;  // guarded by mutex_
  v1::ModelInfo model_;             // guarded by mutex_
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_TOKEN_WORKER_TOKEN_WORKER_SERVICE_H_
