#include "services/token_worker/token_worker_service.h"

#include "services/common/status_mapping.h"
#include "services/token_worker/decode_stream.h"

namespace blockserve::services {

void TokenWorkerService::SetEngine(WorkerEngine* engine, const v1::ModelInfo& model) {
  std::lock_guard<std::mutex> lock(mutex_);
  engine_ = engine;
  model_ = model;
}

grpc::ServerBidiReactor<v1::WorkerRequest, v1::WorkerReply>* TokenWorkerService::DecodeBlocks(
    grpc::CallbackServerContext* context) {
  WorkerEngine* engine;
  v1::ModelInfo model;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    engine = engine_;
    model = model_;
  }
  if (state_->draining()) {
    return new RejectedBidiStream(ToGrpcStatus(ServingState::DrainingError()));
  }
  if (engine == nullptr) {
    return new RejectedBidiStream(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "the token worker is still loading"));
  }
  return new DecodeStream(engine, model);
}

}  // namespace blockserve::services
