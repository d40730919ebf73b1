// ContextAdminServiceImpl: the gRPC ContextAdmin service (callback API) of
// the context service (proto/blockserve/v1/context_admin.proto): sets and
// lists the token-worker set of its WorkerPool, and announces a coming
// drain to gateways.
//
// Only callers on a loopback address (127.0.0.0/8, ::1, a Unix socket) are
// answered unless `allow_any_peer`; others get PERMISSION_DENIED. The
// handlers never block: WorkerPool::UpdateWorkers and workers() only take
// the pool's mutex.
//
// Thread-safe: Attach() may race with incoming calls, which get UNAVAILABLE
// until it ran. The pool and the announce callback must outlive the calls
// (the server is shut down before they go away).
#ifndef BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ADMIN_SERVICE_H_
#define BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ADMIN_SERVICE_H_

#include <functional>
#include <mutex>
#include <string>

#include "absl/strings/string_view.h"
#include "blockserve/v1/context_admin.grpc.pb.h"

namespace blockserve::services {

class WorkerPool;

class ContextAdminServiceImpl final : public v1::ContextAdmin::CallbackService {
 public:
  explicit ContextAdminServiceImpl(bool allow_any_peer) : allow_any_peer_(allow_any_peer) {}

  // Makes the service ready. `dns_managed`: the worker set comes from DNS
  // discovery, so SetWorkers is refused. `announce_drain` is called by
  // AnnounceDrain.
  void Attach(WorkerPool* pool, bool dns_managed, std::function<void()> announce_drain);

  grpc::ServerUnaryReactor* SetWorkers(grpc::CallbackServerContext* context,
                                       const v1::SetWorkersRequest* request,
                                       v1::WorkersResponse* response) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* context,
                                        const v1::ListWorkersRequest* request,
                                        v1::WorkersResponse* response) override;
  grpc::ServerUnaryReactor* AnnounceDrain(grpc::CallbackServerContext* context,
                                          const v1::AnnounceDrainRequest* request,
                                          v1::AnnounceDrainResponse* response) override;

 private:
  // The pool when the call may proceed; otherwise finishes the call with
  // the reason and returns nullptr.
  WorkerPool* Admit(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor);
  void FillWorkers(WorkerPool& pool, v1::WorkersResponse* response) const;

  const bool allow_any_peer_;
  mutable std::mutex mutex_;
  WorkerPool* pool_ = nullptr;            // guarded by mutex_
  bool dns_managed_ = false;              // guarded by mutex_
  std::function<void()> announce_drain_;  // guarded by mutex_
};

// True for "ipv4:127.x.x.x:PORT", "ipv6:[::1]:PORT", "ipv6:%5B::1%5D:PORT",
// "ipv6:[::ffff:127.x.x.x]:PORT" and "unix:..." (grpc::ServerContext::peer()).
bool IsLoopbackPeer(absl::string_view peer);

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ADMIN_SERVICE_H_
