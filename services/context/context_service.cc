#include "services/context/context_service.h"

#include <atomic>
#include <memory>

#include "services/common/proto_convert.h"
#include "services/common/server_stream.h"
#include "services/common/status_mapping.h"

namespace blockserve::services {

void ContextServiceImpl::SetEngine(ContextEngine* engine, const v1::ModelInfo& model) {
  std::lock_guard<std::mutex> lock(mutex_);
  engine_ = engine;
  model_ = model;
}

ContextEngine* ContextServiceImpl::engine() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return engine_;
}

void ContextServiceImpl::FillLoad(ContextEngine& engine, v1::ContextLoad* out) const {
  const ContextEngine::Load load = engine.load();
  out->set_active_sessions(load.scheduler.active_sessions);
  out->set_waiting_sessions(load.scheduler.waiting_sessions);
  out->set_kv_used_bytes(load.scheduler.kv_used_bytes);
  out->set_kv_capacity_bytes(load.scheduler.kv_capacity_bytes);
  out->set_queued_blocks(load.dispatcher.queued_blocks);
  out->set_in_flight_blocks(load.dispatcher.in_flight_blocks);
  out->set_ready_workers(load.dispatcher.ready_workers);
  out->set_draining(state_->draining() || drain_announced_.load(std::memory_order_acquire));
}

grpc::ServerWriteReactor<v1::ContextGenerateResponse>* ContextServiceImpl::Generate(
    grpc::CallbackServerContext* context, const v1::ContextGenerateRequest* request) {
  using Stream = ServerStream<v1::ContextGenerateResponse>;
  ContextEngine* engine = this->engine();
  if (engine == nullptr || !state_->TryEnter()) {
    auto stream = Stream::Create({});
    stream->Finish(ToGrpcStatus(engine == nullptr
                                    ? absl::UnavailableError("the context service is loading")
                                    : ServingState::DrainingError()));
    return stream->reactor();
  }
  // The session id is known once the engine accepted the request; a cancel
  // that comes earlier finds 0 and the engine's own validation path ends it.
  auto session = std::make_shared<std::atomic<uint64_t>>(0);
  ServingState* state = state_;
  auto stream = Stream::Create({.on_cancel =
                                    [engine, session] {
                                      if (uint64_t id = session->load()) engine->Cancel(id);
                                    },
                                .on_done = [state] { state->Exit(); }});
  absl::StatusOr<uint64_t> id =
      engine->Start(FromProto(*request), [this, engine, stream](GenerationUpdate update) {
        v1::ContextGenerateResponse response;
        response.mutable_tokens()->Assign(update.tokens.begin(), update.tokens.end());
        response.mutable_logprobs()->Assign(update.logprobs.begin(), update.logprobs.end());
        FillLoad(*engine, response.mutable_load());
        if (!update.finished) {
          stream->Write(std::move(response));
          return;
        }
        const absl::Status status = FinalStatus(update.finish_reason, update.status);
        if (!status.ok()) {
          stream->Finish(ToGrpcStatus(status));
          return;
        }
        response.set_finish_reason(ToProto(update.finish_reason));
        stream->Write(std::move(response));
        stream->Finish(grpc::Status::OK);
      });
  if (!id.ok()) {
    stream->Finish(ToGrpcStatus(id.status()));
  } else {
    session->store(*id);
    // The client may have gone between the call's start and now.
    if (stream->cancelled()) engine->Cancel(*id);
  }
  return stream->reactor();
}

grpc::ServerUnaryReactor* ContextServiceImpl::GetInfo(grpc::CallbackServerContext* context,
                                                      const v1::GetInfoRequest* request,
                                                      v1::GetInfoResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (engine() == nullptr) {
    reactor->Finish(ToGrpcStatus(absl::UnavailableError("the context service is loading")));
    return reactor;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    *response->mutable_model() = model_;
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ContextServiceImpl::GetLoad(grpc::CallbackServerContext* context,
                                                      const v1::GetLoadRequest* request,
                                                      v1::ContextLoad* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ContextEngine* engine = this->engine();
  if (engine == nullptr) {
    reactor->Finish(ToGrpcStatus(absl::UnavailableError("the context service is loading")));
    return reactor;
  }
  FillLoad(*engine, response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace blockserve::services
