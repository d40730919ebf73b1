// WorkerPool: the context service's BlockDispatcher over gRPC token workers.
//
// One long-lived bidirectional stream per worker (WorkerStream) carries the
// blocks of every session; a batch (the blocks of one block-decoder step)
// goes to the ready worker with the fewest blocks outstanding
// (LeastOutstandingPolicy), in one message, and only what does not fit
// under its max_in_flight_per_worker bound spills to the next worker. When no worker has room,
// blocks wait in a queue (at most one per session, so the queue is bounded by the sessions); a
// block that waits longer than no_worker_timeout fails its session with
// UNAVAILABLE.
//
// Failures: when a worker's stream breaks, its in-flight blocks are sent to
// another worker (decoding is deterministic in (seed, position), so a retry
// gives the same tokens; the scheduler ignores duplicates); a block that
// takes longer than block_timeout is retried the same way; after
// max_attempts dispatches a block fails its session. Broken streams
// reconnect with exponential backoff; keepalive pings detect dead peers.
//
// Membership changes at run time: UpdateWorkers(addresses) connects new
// workers and drains removed ones (no new blocks; in-flight blocks finish,
// then the stream is half-closed and the worker forgotten). A worker that
// reports it is draining gets no new blocks either. WorkerDiscovery
// (worker_discovery.h) feeds UpdateWorkers from DNS, ContextAdmin.SetWorkers
// from `blockserve up`.
//
// A maintenance thread reconnects, enforces timeouts and drains removed
// workers. Thread-safe; no method blocks except Shutdown() and the
// destructor (which wait for the streams to end).
#ifndef BLOCKSERVE_SERVICES_CONTEXT_WORKER_POOL_H_
#define BLOCKSERVE_SERVICES_CONTEXT_WORKER_POOL_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "blockserve/v1/token_worker.grpc.pb.h"
#include "services/context/block_dispatcher.h"
#include "services/context/routing_policy.h"
#include "services/context/worker_stream.h"

namespace blockserve::services {

struct ContextMetrics;

class WorkerPool final : public BlockDispatcher, private WorkerStream::Listener {
 public:
  using StubFactory =
      std::function<std::unique_ptr<v1::TokenWorker::StubInterface>(const std::string& address)>;

  struct Options {
    int max_in_flight_per_worker = 64;
    double block_timeout_s = 30.0;
    int max_attempts = 3;
    double no_worker_timeout_s = 30.0;
    double reconnect_min_s = 0.05;
    double reconnect_max_s = 2.0;
    double tick_s = 0.02;
    // The served model: a worker whose model differs (context size, block
    // length, vocabulary) is never sent blocks.
    v1::ModelInfo model;
    // Empty: insecure channels with keepalive (MakeWorkerStub).
    StubFactory make_stub;
  };

  // A worker as the pool sees it (for tests, logs and metrics).
  struct WorkerStatus {
    std::string address;
    bool ready = false;
    bool accepting = false;
    bool removed = false;
    int outstanding = 0;
    v1::WorkerLoad reported;
  };

  // metrics may be null.
  WorkerPool(Options options, ContextMetrics* metrics);
  ~WorkerPool() override;

  // Sets the worker addresses: new ones are connected, missing ones drained.
  void UpdateWorkers(const std::set<std::string>& addresses);
  std::vector<WorkerStatus> workers() const;
  // Ends every stream and the maintenance thread; queued and in-flight
  // blocks are failed with UNAVAILABLE. Idempotent.
  void Shutdown();

  // BlockDispatcher.
  void SetResultSink(ResultSink sink) override;
  void DispatchBatch(std::vector<BlockJob> jobs, int parts) override;
  void CancelSession(uint64_t session_id) override;
  Stats stats() const override;

 private:
  struct Worker;
  struct InFlight {
    BlockJob job;
    std::string worker;
    double sent_s = 0;
    int attempts = 0;
  };
  struct Pending {
    BlockJob job;
    double since_s = 0;
    int attempts = 0;
    uint64_t batch = 0;  // blocks of one batch are queued adjacent; 0: alone
  };

  // WorkerStream::Listener (gRPC threads).
  void OnWorkerReply(const std::string& address, uint64_t generation,
                     const v1::WorkerReply& reply) override;
  void OnStreamDone(const std::string& address, uint64_t generation,
                    const grpc::Status& status) override;

  void MaintenanceLoop();
  // All *Locked methods run with mutex_ held; failures are appended to
  // `failed` and delivered by the caller after unlocking.
  void PumpLocked(double now);
  void RequeueLocked(BlockJob job, int attempts, double now, const absl::Status& cause,
                     uint64_t batch, std::vector<BlockResult>& failed);
  void CancelAtWorkerLocked(const std::string& address, uint64_t session_id);
  void EraseWorkerLocked(const std::string& address);
  bool CompatibleLocked(const v1::ModelInfo& model, const std::string& address) const;
  void PublishLocked();
  void Deliver(std::vector<BlockResult>& results);
  static double NowSeconds();

  const Options options_;
  ContextMetrics* const metrics_;
  std::mutex sink_mutex_;  // held while delivering, so clearing the sink is safe
  ResultSink sink_;        // guarded by sink_mutex_

  mutable std::mutex mutex_;
  std::condition_variable streams_done_;
  std::map<std::string, std::unique_ptr<Worker>> workers_;  // guarded by mutex_
  std::map<uint64_t, InFlight> in_flight_;                  // by session; guarded by mutex_
  std::deque<Pending> pending_;                             // guarded by mutex_
  LeastOutstandingPolicy policy_;                           // guarded by mutex_
  uint64_t next_batch_ = 1;                                 // guarded by mutex_
  int live_streams_ = 0;                                    // guarded by mutex_
  bool shutting_down_ = false;                              // guarded by mutex_

  std::mutex tick_mutex_;
  std::condition_variable tick_cv_;
  bool stop_ticks_ = false;  // guarded by tick_mutex_
  std::thread maintenance_;
};

// An insecure channel to `address` with keepalive pings and fast
// reconnection, and a TokenWorker stub on it.
std::unique_ptr<v1::TokenWorker::StubInterface> MakeWorkerStub(const std::string& address);

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_WORKER_POOL_H_
