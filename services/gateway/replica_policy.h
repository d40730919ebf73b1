// LeastLoadedReplicaPolicy: which context-service replica takes the next
// request.
//
// A replica's load is the larger of the requests this gateway has open on
// it and the sessions (active + waiting) it last reported: the first is
// exact but blind to other gateways, the second covers every gateway but is
// a little stale. Among available replicas, those with a ready token worker
// are preferred; the least loaded wins and ties rotate. None available: -1.
//
// Thread-compatible (the rotation is state): the router calls it under its
// lock.
#ifndef BLOCKSERVE_SERVICES_GATEWAY_REPLICA_POLICY_H_
#define BLOCKSERVE_SERVICES_GATEWAY_REPLICA_POLICY_H_

#include <cstddef>

#include "absl/types/span.h"

namespace blockserve::services {

struct ReplicaSlot {
  bool available = false;  // answering, serving this model, not draining
  int local_outstanding = 0;
  int reported_sessions = 0;
  bool has_workers = true;
};

class LeastLoadedReplicaPolicy {
 public:
  int Pick(absl::Span<const ReplicaSlot> replicas);

 private:
  size_t rotation_ = 0;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_GATEWAY_REPLICA_POLICY_H_
