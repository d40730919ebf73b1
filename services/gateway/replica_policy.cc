#include "services/gateway/replica_policy.h"

#include <algorithm>

namespace blockserve::services {

int LeastLoadedReplicaPolicy::Pick(absl::Span<const ReplicaSlot> replicas) {
  const size_t n = replicas.size();
  bool any_with_workers = false;
  for (const ReplicaSlot& r : replicas) any_with_workers |= r.available && r.has_workers;
  int best = -1;
  int best_load = 0;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (rotation_ + k) % n;
    const ReplicaSlot& r = replicas[i];
    if (!r.available || (any_with_workers && !r.has_workers)) continue;
    const int load = std::max(r.local_outstanding, r.reported_sessions);
    if (best < 0 || load < best_load) {
      best = static_cast<int>(i);
      best_load = load;
    }
  }
  if (best >= 0) rotation_ = static_cast<size_t>(best) + 1;
  return best;
}

}  // namespace blockserve::services
