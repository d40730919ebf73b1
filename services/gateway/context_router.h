// ContextRouter: the gateway's view of its context-service replicas
// (--context ADDR,ADDR): one channel and stub each, their load, and which
// one takes the next request (LeastLoadedReplicaPolicy).
//
// A poll thread calls GetInfo (until the model is known) and GetLoad on
// every replica every poll interval, with a deadline; a replica that does
// not answer, is draining, or serves a different model than the first one
// that answered is unavailable until a later poll succeeds. Each
// ContextGenerateResponse also carries the replica's load (ReportLoad).
//
// Thread-safe. Acquire/Release/Report* never block; WaitForModel blocks (for
// start-up, on the main thread).
#ifndef BLOCKSERVE_SERVICES_GATEWAY_CONTEXT_ROUTER_H_
#define BLOCKSERVE_SERVICES_GATEWAY_CONTEXT_ROUTER_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "blockserve/v1/context.grpc.pb.h"
#include "prometheus/gauge.h"
#include "services/gateway/replica_policy.h"

namespace blockserve::services {

struct GatewayMetrics;

class ContextRouter {
 public:
  struct Options {
    double poll_interval_s = 0.2;
    double poll_timeout_s = 1.0;
  };

  // Starts polling at once. metrics may be null.
  ContextRouter(const std::vector<std::string>& addresses, const Options& options,
                GatewayMetrics* metrics);
  ~ContextRouter();

  // The least-loaded available replica, counting one more open request on
  // it; UNAVAILABLE when none is.
  absl::StatusOr<int> Acquire();
  void Release(int replica);
  void ReportLoad(int replica, const v1::ContextLoad& load);
  // A call to the replica failed with UNAVAILABLE: skip it until it answers
  // a poll again.
  void ReportUnavailable(int replica);

  v1::ContextService::Stub& stub(int replica) { return *replicas_[replica]->stub; }
  const std::string& address(int replica) const { return replicas_[replica]->address; }
  int size() const { return static_cast<int>(replicas_.size()); }

  std::optional<v1::ModelInfo> model() const;
  // Waits until a replica has told the model (true) or the timeout passes.
  bool WaitForModel(double timeout_s);

 private:
  struct Replica {
    std::string address;
    std::unique_ptr<v1::ContextService::Stub> stub;
    bool answering = false;
    bool compatible = true;
    int outstanding = 0;
    v1::ContextLoad load;
    prometheus::Gauge* up_gauge = nullptr;
    prometheus::Gauge* outstanding_gauge = nullptr;
  };

  void PollLoop();
  void PublishLocked();

  const Options options_;
  GatewayMetrics* const metrics_;
  std::vector<std::unique_ptr<Replica>> replicas_;  // fixed size; fields under mutex_

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  LeastLoadedReplicaPolicy policy_;     // guarded by mutex_
  std::optional<v1::ModelInfo> model_;  // guarded by mutex_
  bool stopping_ = false;               // guarded by mutex_
  std::thread poller_;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_GATEWAY_CONTEXT_ROUTER_H_
