// ContextEngine: the context service's scheduler thread. ONE thread drives
// a ContextScheduler (sessions, the block KV cache in a bounded page pool,
// batched block-decoder passes) and sends every block it produces to a
// BlockDispatcher (the token workers); decoded blocks come back through the
// dispatcher's result sink and are applied on the same thread. The sessions
// are spread over pipeline groups (ContextScheduler), one per ready token
// worker and at least two unless set: each step advances one group and
// dispatches its blocks as one batch (split over several workers only when
// there are fewer groups than workers), so the block decoder runs one group
// while the workers decode the others.
//
// Start() validates a request and queues it; the session's updates (new
// tokens, then a final one with the finish reason or an error status)
// arrive through its callback on the engine thread, in order; the callback
// must be quick and must not block (the gRPC handler just queues a write).
// Cancel() ends a session at once: its KV memory is freed and its block at
// a worker is dropped, and a final kCancelled update follows. Shutdown()
// cancels every session and stops the thread.
//
// Transport-agnostic: no gRPC types. Thread-safe: every public method may be
// called from any thread, except from inside a callback.
#ifndef BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ENGINE_H_
#define BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ENGINE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "services/context/block_dispatcher.h"
#include "shared/engine/context_scheduler.h"
#include "shared/engine/request.h"

namespace blockserve::services {

struct ContextMetrics;

class ContextEngine {
 public:
  using Callback = std::function<void(GenerationUpdate)>;

  struct Options {
    ContextScheduler::Options scheduler;
    // Run one tiny block-decoder pass before serving (start-up warm-up).
    bool warm_up = true;
    // Pipeline groups; 0: one per ready token worker, at least 2.
    int pipeline_groups = 0;
  };

  // A snapshot of the engine's load, for routing and metrics.
  struct Load {
    ContextScheduler::Stats scheduler;
    BlockDispatcher::Stats dispatcher;
  };

  // The decoder, backend and dispatcher must outlive the engine; metrics
  // may be null.
  static absl::StatusOr<std::unique_ptr<ContextEngine>> Create(
      const BlockDecoder& decoder, Backend& backend, const ModelConfig& config,
      const Options& options, BlockDispatcher* dispatcher, ContextMetrics* metrics);
  ~ContextEngine();

  // INVALID_ARGUMENT for a bad request, UNAVAILABLE after Shutdown().
  absl::StatusOr<uint64_t> Start(GenerationRequest request, Callback callback);
  void Cancel(uint64_t session_id);
  void Shutdown();

  Load load() const;
  // Sessions started and not yet finished (including queued arrivals).
  int open_sessions() const;
  const ModelConfig& config() const { return config_; }

 private:
  struct Arrival {
    uint64_t id;
    GenerationRequest request;
  };
  struct SessionClock {
    double arrival_s = 0;
    double last_block_s = -1;
    bool first_job_seen = false;
  };

  ContextEngine(std::unique_ptr<ContextScheduler> scheduler, const ModelConfig& config,
                int pipeline_groups, BlockDispatcher* dispatcher, ContextMetrics* metrics);
  void Loop();
  void UpdatePipelineGroups();
  void Deliver(std::vector<GenerationUpdate>& updates);
  void PublishLoad();
  static double NowSeconds();

  std::unique_ptr<ContextScheduler> scheduler_;  // engine thread only
  const ModelConfig config_;
  const int pipeline_groups_;
  BlockDispatcher* const dispatcher_;
  ContextMetrics* const metrics_;
  std::map<uint64_t, SessionClock> clocks_;  // engine thread only
  int dispatch_parts_ = 1;                   // engine thread only

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Arrival> arrivals_;           // guarded by mutex_
  std::vector<uint64_t> cancels_;           // guarded by mutex_
  std::vector<BlockResult> results_;        // guarded by mutex_
  std::map<uint64_t, Callback> callbacks_;  // guarded by mutex_
  uint64_t next_id_ = 1;                    // guarded by mutex_
  bool stopping_ = false;                   // guarded by mutex_
  Load load_;                               // guarded by mutex_
  std::thread thread_;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ENGINE_H_
