// ServingState: whether a server accepts new requests, and how many it is
// still working on, for graceful draining.
//
// Handlers call TryEnter() when a request arrives (false once draining: the
// request must get UNAVAILABLE) and Exit() when it is completely over. The
// server runner calls StartDraining() on SIGTERM and then waits, on its own
// thread, until in_flight() is zero or the grace period ends.
//
// Thread-safe (atomics); never blocks.
#ifndef BLOCKSERVE_SERVICES_COMMON_SERVING_STATE_H_
#define BLOCKSERVE_SERVICES_COMMON_SERVING_STATE_H_

#include <atomic>

#include "absl/status/status.h"

namespace blockserve::services {

class ServingState {
 public:
  bool TryEnter() {
    if (draining_.load(std::memory_order_acquire)) return false;
    in_flight_.fetch_add(1, std::memory_order_acq_rel);
    // Re-check: StartDraining() may have run in between; the runner then
    // waits for this request too, which is harmless.
    return true;
  }
  void Exit() { in_flight_.fetch_sub(1, std::memory_order_acq_rel); }

  void StartDraining() { draining_.store(true, std::memory_order_release); }
  bool draining() const { return draining_.load(std::memory_order_acquire); }
  int in_flight() const { return in_flight_.load(std::memory_order_acquire); }

  // The status a request refused while draining gets.
  static absl::Status DrainingError() {
    return absl::UnavailableError("the server is draining: retry on another replica");
  }

 private:
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_COMMON_SERVING_STATE_H_
