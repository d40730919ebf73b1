#include "services/context/routing_policy.h"

namespace blockserve::services {

int LeastOutstandingPolicy::Pick(absl::Span<const WorkerSlot> workers) {
  const size_t n = workers.size();
  if (n == 0) return -1;
  int best = -1;
  // Scan from the rotation point so that ties go to a different worker each
  // time.
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (rotation_ + k) % n;
    const WorkerSlot& w = workers[i];
    if (!w.ready || !w.accepting || w.outstanding >= w.max_in_flight) continue;
    if (best < 0 || w.outstanding < workers[best].outstanding) best = static_cast<int>(i);
  }
  if (best >= 0) rotation_ = static_cast<size_t>(best) + 1;
  return best;
}

}  // namespace blockserve::services
