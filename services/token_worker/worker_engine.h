// WorkerEngine: the token worker's engine thread. One thread drives a
// TokenDecodeBatcher (continuous batching: every block the worker holds,
// whatever its step, advances in the same forward pass), fed by any number
// of connections (one per context-service stream).
//
// Connections are independent name spaces: session ids are only unique per
// connection, so the engine gives every block a private id and maps results
// back. A connection's sink receives its finished blocks (and the worker's
// load) on the engine thread; it must be quick and must not block (the
// stream reactor just queues a write). Disconnect() drops the connection's
// blocks. The engine keeps no state across blocks.
//
// Thread-safe: every public method may be called from any thread (gRPC
// reactions post here and never wait), and all but Shutdown() and WarmUp()
// also from inside a sink (they only queue work for the engine thread).
#ifndef BLOCKSERVE_SERVICES_TOKEN_WORKER_WORKER_ENGINE_H_
#define BLOCKSERVE_SERVICES_TOKEN_WORKER_WORKER_ENGINE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "shared/engine/block_job.h"
#include "shared/engine/token_decode_batcher.h"

namespace blockserve::services {

struct WorkerMetrics;

class WorkerEngine {
 public:
  struct Options {
    TokenDecodeBatcher::Options batcher;
  };
  struct Load {
    int queued_blocks = 0;
    int active_blocks = 0;
    int last_batch = 0;
    int max_active_blocks = 0;
    bool draining = false;
  };
  // Finished blocks of one connection (possibly none: a load update).
  using Sink = std::function<void(std::vector<BlockResult> results, const Load& load)>;

  // The decoder and backend must outlive the engine; metrics may be null.
  static absl::StatusOr<std::unique_ptr<WorkerEngine>> Create(const TokenDecoder& decoder,
                                                              Backend& backend,
                                                              const Options& options,
                                                              WorkerMetrics* metrics);
  ~WorkerEngine();

  uint64_t Connect(Sink sink);
  void Disconnect(uint64_t connection);
  // Queues a block; a block the model cannot decode comes back failed.
  void Submit(uint64_t connection, BlockJob job);
  // Queues blocks together: the next forward pass starts with all of them.
  void SubmitBatch(uint64_t connection, std::vector<BlockJob> jobs);
  void Cancel(uint64_t connection, uint64_t session_id);

  // Marks the worker as draining and sends every connection a load update
  // saying so (its context service then sends no new blocks).
  void SetDraining();
  // Decodes one small block of zeros end to end (start-up warm-up). Blocks
  // the caller until it is done.
  absl::Status WarmUp(int context_size);

  Load load() const;
  // Blocks received and not yet answered, across connections.
  int outstanding() const;
  int connections() const;
  void Shutdown();

 private:
  struct Op {
    enum class Kind { kConnect, kDisconnect, kSubmit, kCancel } kind = Kind::kConnect;
    uint64_t connection = 0;
    uint64_t session_id = 0;
    BlockJob job;
    Sink sink;
  };
  struct Origin {
    uint64_t connection = 0;
    uint64_t session_id = 0;
    double arrival_s = 0;
  };

  WorkerEngine(std::unique_ptr<TokenDecodeBatcher> batcher, const Options& options,
               WorkerMetrics* metrics);
  static Op MakeOp(Op::Kind kind, uint64_t connection);
  void Loop();
  void Apply(Op& op, std::map<uint64_t, std::vector<BlockResult>>& replies);
  void DropLocal(uint64_t local);
  static double NowSeconds();

  std::unique_ptr<TokenDecodeBatcher> batcher_;  // engine thread only
  const Options options_;
  WorkerMetrics* metrics_;

  // Engine thread only.
  std::map<uint64_t, Sink> sinks_;
  std::map<uint64_t, Origin> origins_;                           // private id -> origin
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> local_ids_;  // (conn, session) -> id
  uint64_t next_local_id_ = 1;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Op> inbox_;         // guarded by mutex_
  uint64_t next_connection_ = 1;  // guarded by mutex_
  int pending_submits_ = 0;       // guarded by mutex_: in inbox_
  int live_connections_ = 0;      // guarded by mutex_
  Load load_;                     // guarded by mutex_: snapshot after each step
  bool broadcast_load_ = false;   // guarded by mutex_
  bool stopping_ = false;         // guarded by mutex_
  std::thread thread_;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_TOKEN_WORKER_WORKER_ENGINE_H_
