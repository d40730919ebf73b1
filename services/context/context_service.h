// ContextServiceImpl: the gRPC ContextService (callback API) over a
// ContextEngine. Thin: handlers convert protos, map errors through
// services/common/status_mapping.h and post to the engine; the engine
// thread writes each session's updates back through a ServerStream. A
// cancelled call (client gone, deadline passed) cancels its session at
// once, freeing its KV memory and dropping its block at the worker.
//
// Thread-safe: SetEngine() may race with incoming calls (which get
// UNAVAILABLE until the engine is set, and while draining). AnnounceDrain()
// may be called from any thread.
#ifndef BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_SERVICE_H_
#define BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_SERVICE_H_

#include <atomic>
#include <mutex>

#include "blockserve/v1/context.grpc.pb.h"
#include "services/common/serving_state.h"
#include "services/context/context_engine.h"

namespace blockserve::services {

class ContextServiceImpl final : public v1::ContextService::CallbackService {
 public:
  explicit ContextServiceImpl(ServingState* state) : state_(state) {}

  // Makes the service ready; `engine` must outlive the service's calls.
  void SetEngine(ContextEngine* engine, const v1::ModelInfo& model);
  // From now on every ContextLoad says `draining`, so gateways route no new
  // sessions here, but sessions that still arrive are accepted (the real
  // drain starts with SIGTERM). See ContextAdmin.AnnounceDrain.
  void AnnounceDrain() { drain_announced_.store(true, std::memory_order_release); }

  grpc::ServerWriteReactor<v1::ContextGenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::ContextGenerateRequest* request) override;
  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* context,
                                    const v1::GetInfoRequest* request,
                                    v1::GetInfoResponse* response) override;
  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* context,
                                    const v1::GetLoadRequest* request,
                                    v1::ContextLoad* response) override;

 private:
  ContextEngine* engine() const;
  void FillLoad(ContextEngine& engine, v1::ContextLoad* load) const;

  ServingState* const state_;
  mutable std::mutex mutex_;
  ContextEngine* engine_ = nullptr;  // guarded by mutex_
  v1::ModelInfo model_;              // guarded by mutex_
  std::atomic<bool> drain_announced_{false};
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_SERVICE_H_
