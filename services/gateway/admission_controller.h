// AdmissionController: bounded concurrency with a bounded queue in front of
// the gateway's expensive work (tokenization, a context-service session).
//
// Enter() admits a request at once when fewer than max_running run,
// queues it when the queue has room (its on_admitted callback then runs
// later, in FIFO order, on the thread that calls Release()), and otherwise
// refuses it: the caller answers RESOURCE_EXHAUSTED (Rejection()) before
// doing any work. Every admitted request calls Release() exactly once;
// a queued request whose client went away calls Withdraw().
//
// Callbacks run outside the lock and must only post work elsewhere.
// Thread-safe; never blocks.
#ifndef BLOCKSERVE_SERVICES_GATEWAY_ADMISSION_CONTROLLER_H_
#define BLOCKSERVE_SERVICES_GATEWAY_ADMISSION_CONTROLLER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "absl/status/status.h"

namespace blockserve::services {

class AdmissionController {
 public:
  struct Options {
    int max_running = 64;
    int max_queued = 256;
  };
  enum class Decision { kAdmitted, kQueued, kRejected };

  explicit AdmissionController(const Options& options) : options_(options) {}

  // `id` identifies the request for Withdraw(); `on_admitted` runs only if
  // the request was queued, when it is admitted.
  Decision Enter(uint64_t id, std::function<void()> on_admitted);
  // A running request finished: admits the next queued one, if any.
  void Release();
  // Removes a queued request; false when it is not queued (already admitted
  // or never queued).
  bool Withdraw(uint64_t id);

  int running() const;
  int queued() const;
  const Options& options() const { return options_; }

  // RESOURCE_EXHAUSTED, saying how full the gateway is.
  absl::Status Rejection() const;

 private:
  struct Waiter {
    uint64_t id;
    std::function<void()> on_admitted;
  };

  const Options options_;
  mutable std::mutex mutex_;
  int running_ = 0;           // guarded by mutex_
  std::deque<Waiter> queue_;  // guarded by mutex_
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_GATEWAY_ADMISSION_CONTROLLER_H_
