// LeastOutstandingPolicy: which token worker takes the next block.
//
// The worker with the fewest blocks outstanding (sent and not yet answered)
// among those that are ready, accepting (not draining, not being removed)
// and below their in-flight bound; ties rotate, so equally idle workers
// share the load. No worker qualifies: -1, and the block waits.
//
// Thread-compatible (the rotation is state): the worker pool calls it under
// its lock.
#ifndef BLOCKSERVE_SERVICES_CONTEXT_ROUTING_POLICY_H_
#define BLOCKSERVE_SERVICES_CONTEXT_ROUTING_POLICY_H_

#include <cstddef>

#include "absl/types/span.h"

namespace blockserve::services {

struct WorkerSlot {
  int outstanding = 0;
  int max_in_flight = 1;
  bool ready = false;      // stream open and greeted
  bool accepting = false;  // not draining, not removed, compatible
};

class LeastOutstandingPolicy {
 public:
  // Index into `workers`, or -1 when none can take a block now.
  int Pick(absl::Span<const WorkerSlot> workers);

 private:
  size_t rotation_ = 0;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_ROUTING_POLICY_H_
