// ContextAdminServiceImpl: the gRPC ContextAdmin service (callback API) of
// the context service (proto/blockserve/v1/context_admin.proto): sets and
// lists the token-worker set of its WorkerPool, and announces a coming
// drain to gateways.
//
// Only callers on this machine are answered (a loopback address, a Unix
// socket, or one of this machine's interface addresses, read once at
// construction: `blockserve up --host=10.0.0.5` calls its context services
// on that address) unless `allow_any_peer`; others get PERMISSION_DENIED.
// The handlers never block: WorkerPool::UpdateWorkers and workers() only
// take the pool's mutex.
//
// Thread-safe: Attach() may race with incoming calls, which get UNAVAILABLE
// until it ran. The pool and the announce callback must outlive the calls
// (the server is shut down before they go away).
#ifndef BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ADMIN_SERVICE_H_
#define BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ADMIN_SERVICE_H_

#include <functional>
#include <mutex>
#include <set>
#include <string>

#include "absl/strings/string_view.h"
#include "blockserve/v1/context_admin.grpc.pb.h"

namespace blockserve::services {

class WorkerPool;

class ContextAdminServiceImpl final : public v1::ContextAdmin::CallbackService {
 public:
  explicit ContextAdminServiceImpl(bool allow_any_peer);

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
  const std::set<std::string> local_ips_;  // this machine's interface addresses
  mutable std::mutex mutex_;
  WorkerPool* pool_ = nullptr;            // guarded by mutex_
  bool dns_managed_ = false;              // guarded by mutex_
  std::function<void()> announce_drain_;  // guarded by mutex_
};

// True for "ipv4:127.x.x.x:PORT", "ipv6:[::1]:PORT", "ipv6:%5B::1%5D:PORT",
// "ipv6:[::ffff:127.x.x.x]:PORT" and "unix:..." (grpc::ServerContext::peer()).
bool IsLoopbackPeer(absl::string_view peer);

// The IP address in a peer string, normalized ("ipv4:10.0.0.5:41000" ->
// "10.0.0.5"; "ipv6:[fe80::1]:41000" and "ipv6:%5Bfe80::1%5D:41000" ->
// "fe80::1"; an IPv4-mapped IPv6 address -> its IPv4 form); empty for other
// forms (unix:) or an unparsable address.
std::string PeerIp(absl::string_view peer);

// True when `peer` is on this machine: IsLoopbackPeer, or its address is
// one of `local_ips` (normalized as PeerIp does).
bool IsLocalPeer(absl::string_view peer, const std::set<std::string>& local_ips);

// The IPv4 and IPv6 addresses of this machine's interfaces (getifaddrs),
// normalized as PeerIp does; empty if they cannot be read.
std::set<std::string> LocalInterfaceIps();

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ADMIN_SERVICE_H_
