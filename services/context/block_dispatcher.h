// BlockDispatcher: where the context service sends the blocks its scheduler
// produces, and where their decoded tokens come from. The gRPC WorkerPool
// implements it over the token workers; tests implement it in process, so
// the scheduling loop is tested without sockets.
//
// Contract: for every dispatched block, the result sink receives at most
// one BlockResult (possibly with a non-OK status: UNAVAILABLE when no worker
// could take it in time, DEADLINE_EXCEEDED when it timed out too often),
// unless the session was cancelled first. Results may come from any thread;
// the sink must be quick and must not block. A duplicate or late result is
// harmless: ContextScheduler::CompleteBlock ignores stale block indices.
//
// Implementations are thread-safe; no method blocks.
#ifndef BLOCKSERVE_SERVICES_CONTEXT_BLOCK_DISPATCHER_H_
#define BLOCKSERVE_SERVICES_CONTEXT_BLOCK_DISPATCHER_H_

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "shared/engine/block_job.h"

namespace blockserve::services {

class BlockDispatcher {
 public:
  using ResultSink = std::function<void(BlockResult)>;

  struct Stats {
    int queued_blocks = 0;     // waiting for a worker
    int in_flight_blocks = 0;  // at a worker
    int ready_workers = 0;
  };

  virtual ~BlockDispatcher() = default;

  // Where results go; set before the first Dispatch(). Setting an empty
  // sink waits for deliveries in progress, after which none are made.
  virtual void SetResultSink(ResultSink sink) = 0;
  // The blocks of one block-decoder step, in `parts` (>= 1) near-equal
  // parts. Each part is kept together on one worker where it has room: one
  // batch of 8 decodes faster than two of 4, since every worker streams all
  // the token decoder's weights (the vocabulary matrix above all) once per
  // token step, however few its rows. More parts than one spread a step
  // over idle workers when there are fewer pipeline groups than workers.
  virtual void DispatchBatch(std::vector<BlockJob> jobs, int parts) = 0;
  void Dispatch(BlockJob job) {
    std::vector<BlockJob> jobs;
    jobs.push_back(std::move(job));
    DispatchBatch(std::move(jobs), 1);
  }
  // Forgets the session's block, queued or in flight; no result follows.
  virtual void CancelSession(uint64_t session_id) = 0;
  virtual Stats stats() const = 0;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_BLOCK_DISPATCHER_H_
