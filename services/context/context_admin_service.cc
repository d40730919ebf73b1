#include "services/context/context_admin_service.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/common/status_mapping.h"
#include "services/context/worker_discovery.h"
#include "services/context/worker_pool.h"
#include "shared/common/logging.h"

namespace blockserve::services {

bool IsLoopbackPeer(absl::string_view peer) {
  return absl::StartsWith(peer, "ipv4:127.") || absl::StartsWith(peer, "ipv6:[::1]:") ||
         absl::StartsWith(peer, "ipv6:%5B::1%5D:") || absl::StartsWith(peer, "ipv6:[::ffff:127.") ||
         absl::StartsWith(peer, "unix:");
}

void ContextAdminServiceImpl::Attach(WorkerPool* pool, bool dns_managed,
                                     std::function<void()> announce_drain) {
  std::lock_guard<std::mutex> lock(mutex_);
  pool_ = pool;
  dns_managed_ = dns_managed;
  announce_drain_ = std::move(announce_drain);
}

WorkerPool* ContextAdminServiceImpl::Admit(grpc::CallbackServerContext* context,
                                           grpc::ServerUnaryReactor* reactor) {
  const std::string peer = context->peer();
  if (!allow_any_peer_ && !IsLoopbackPeer(peer)) {
    reactor->Finish(ToGrpcStatus(absl::PermissionDeniedError(
        absl::StrCat("ContextAdmin answers only loopback callers (this call came from ", peer,
                     "); start the context service with --admin-any-peer to allow others"))));
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (pool_ == nullptr) {
    reactor->Finish(ToGrpcStatus(absl::UnavailableError("the context service is loading")));
  }
  return pool_;
}

void ContextAdminServiceImpl::FillWorkers(WorkerPool& pool, v1::WorkersResponse* response) const {
  for (const WorkerPool::WorkerStatus& status : pool.workers()) {
    v1::WorkerState* worker = response->add_workers();
    worker->set_address(status.address);
    worker->set_ready(status.ready);
    worker->set_accepting(status.accepting);
    worker->set_removed(status.removed);
    worker->set_outstanding_blocks(status.outstanding);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  response->set_membership(dns_managed_ ? "dns" : "static");
}

grpc::ServerUnaryReactor* ContextAdminServiceImpl::SetWorkers(grpc::CallbackServerContext* context,
                                                              const v1::SetWorkersRequest* request,
                                                              v1::WorkersResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  WorkerPool* pool = Admit(context, reactor);
  if (pool == nullptr) return reactor;
  bool dns_managed = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dns_managed = dns_managed_;
  }
  if (dns_managed) {
    reactor->Finish(ToGrpcStatus(absl::FailedPreconditionError(
        "the worker set comes from DNS discovery (--workers dns:///...): scale the workers "
        "behind the name instead")));
    return reactor;
  }
  if (request->addresses().empty()) {
    reactor->Finish(
        ToGrpcStatus(absl::InvalidArgumentError("SetWorkers needs at least one worker address")));
    return reactor;
  }
  const std::string joined = absl::StrJoin(request->addresses(), ",");
  absl::StatusOr<WorkerTargets> targets = ParseWorkerTargets(joined, "addresses");
  if (targets.ok() && targets->uses_dns()) {
    targets = absl::InvalidArgumentError("SetWorkers takes HOST:PORT addresses, not dns:/// names");
  }
  if (!targets.ok()) {
    reactor->Finish(ToGrpcStatus(targets.status()));
    return reactor;
  }
  LOG(INFO) << "context admin: worker set is now " << joined;
  pool->UpdateWorkers(targets->static_addresses);
  FillWorkers(*pool, response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ContextAdminServiceImpl::ListWorkers(
    grpc::CallbackServerContext* context, const v1::ListWorkersRequest* request,
    v1::WorkersResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  WorkerPool* pool = Admit(context, reactor);
  if (pool == nullptr) return reactor;
  FillWorkers(*pool, response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ContextAdminServiceImpl::AnnounceDrain(
    grpc::CallbackServerContext* context, const v1::AnnounceDrainRequest* request,
    v1::AnnounceDrainResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Admit(context, reactor) == nullptr) return reactor;
  std::function<void()> announce;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    announce = announce_drain_;
  }
  LOG(INFO) << "context admin: drain announced (gateways will route no new sessions here)";
  if (announce) announce();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace blockserve::services
