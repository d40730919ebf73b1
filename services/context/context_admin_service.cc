#include "services/context/context_admin_service.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "services/common/status_mapping.h"
#include "services/context/worker_discovery.h"
#include "services/context/worker_pool.h"
#include "shared/common/logging.h"

namespace blockserve::services {

namespace {

// Normalizes an IP address text (inet_pton + inet_ntop); IPv4-mapped IPv6
// addresses become IPv4. Empty if it does not parse.
std::string NormalizeIp(const std::string& text) {
  char out[INET6_ADDRSTRLEN] = {};
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return inet_ntop(AF_INET, &v4, out, sizeof(out)) != nullptr ? out : "";
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return "";
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memcpy(&v4, &v6.s6_addr[12], 4);
    return inet_ntop(AF_INET, &v4, out, sizeof(out)) != nullptr ? out : "";
  }
  return inet_ntop(AF_INET6, &v6, out, sizeof(out)) != nullptr ? out : "";
}

}  // namespace

std::string PeerIp(absl::string_view peer) {
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    const size_t colon = peer.rfind(':');
    if (colon == absl::string_view::npos) return "";
    return NormalizeIp(std::string(peer.substr(0, colon)));
  }
  if (absl::ConsumePrefix(&peer, "ipv6:")) {
    std::string text = absl::StrReplaceAll(peer, {{"%5B", "["}, {"%5D", "]"}, {"%25", "%"}});
    const size_t close = text.rfind(']');
    if (text.empty() || text[0] != '[' || close == std::string::npos) return "";
    std::string ip = text.substr(1, close - 1);
    ip = ip.substr(0, ip.find('%'));  // no zone id
    return NormalizeIp(ip);
  }
  return "";
}

bool IsLocalPeer(absl::string_view peer, const std::set<std::string>& local_ips) {
  if (IsLoopbackPeer(peer)) return true;
  const std::string ip = PeerIp(peer);
  return !ip.empty() && local_ips.count(ip) > 0;
}

std::set<std::string> LocalInterfaceIps() {
  std::set<std::string> ips;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return ips;
  for (const ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
      if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) != nullptr) ips.insert(text);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
      if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)) != nullptr) {
        const std::string normalized = NormalizeIp(text);
        if (!normalized.empty()) ips.insert(normalized);
      }
    }
  }
  freeifaddrs(list);
  return ips;
}

ContextAdminServiceImpl::ContextAdminServiceImpl(bool allow_any_peer)
    : allow_any_peer_(allow_any_peer), local_ips_(LocalInterfaceIps()) {}

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
  if (!allow_any_peer_ && !IsLocalPeer(peer, local_ips_)) {
    reactor->Finish(ToGrpcStatus(absl::PermissionDeniedError(
        absl::StrCat("ContextAdmin answers only callers on this machine (this call came from ",
                     peer, "); start the context service with --admin-any-peer to allow others"))));
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
