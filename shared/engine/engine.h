// Engine: in-process generation with continuous batching, the library the
// CLI, the benchmarks and the tests drive directly (the services split the
// same stages across processes instead).
//
// Enqueue() hands a request to the engine thread and returns its id at once;
// updates (new tokens, then a final one with the finish reason) arrive
// through the request's callback on the engine thread, in order. Requests
// join and leave the running batch between steps. Cancel() ends a request
// (its memory is freed before the final kCancelled update); Shutdown() ends
// all of them and stops the thread.
//
// For a Block Transformer each iteration runs one block-decoder pass (the
// ContextScheduler) and then token-decoder steps (the TokenDecodeBatcher)
// until the blocks it produced are decoded; for a vanilla model each
// iteration is one VanillaScheduler step.
//
// Thread-safe: every public method may be called from any thread, except
// from inside a callback (which must be quick and must not block).
#ifndef BLOCKSERVE_SHARED_ENGINE_ENGINE_H_
#define BLOCKSERVE_SHARED_ENGINE_ENGINE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "shared/engine/context_scheduler.h"
#include "shared/engine/request.h"
#include "shared/engine/token_decode_batcher.h"
#include "shared/engine/vanilla_scheduler.h"
#include "shared/model/model.h"

namespace blockserve {

struct EngineOptions {
  ContextScheduler::Options context;
  TokenDecodeBatcher::Options token_decoder;
  VanillaScheduler::Options vanilla;
};

struct EngineStats {
  int waiting_requests = 0;
  int active_requests = 0;
  int64_t kv_used_bytes = 0;
  int64_t kv_capacity_bytes = 0;
  int64_t steps = 0;
  int64_t generated_tokens = 0;
};

class Engine {
 public:
  using Callback = std::function<void(GenerationUpdate)>;

  // The model (and its backend) must outlive the engine.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const Model& model,
                                                        const EngineOptions& options);
  ~Engine();

  // INVALID_ARGUMENT for a bad request, FAILED_PRECONDITION after Shutdown().
  absl::StatusOr<uint64_t> Enqueue(GenerationRequest request, Callback callback);
  void Cancel(uint64_t request_id);
  void Shutdown();
  EngineStats stats() const;

  // The scheduling core behind the engine thread (one per model kind).
  class Core {
   public:
    virtual ~Core() = default;
    virtual absl::Status Add(uint64_t id, GenerationRequest request) = 0;
    virtual bool Cancel(uint64_t id) = 0;
    virtual bool HasWork() const = 0;
    // One iteration; appends the updates it produced.
    virtual void Step(std::vector<GenerationUpdate>& updates) = 0;
    virtual EngineStats Stats() const = 0;
  };

 private:
  Engine(const Model& model, std::unique_ptr<Core> core);
  void Loop();

  const Model& model_;
  std::unique_ptr<Core> core_;  // used by the engine thread only

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  struct Pending {
    uint64_t id;
    GenerationRequest request;
  };
  std::vector<Pending> inbox_;           // guarded by mutex_
  std::vector<uint64_t> cancels_;        // guarded by mutex_
  std::map<uint64_t, Callback> callbacks_;  // guarded by mutex_
  uint64_t next_id_ = 1;                 // guarded by mutex_
  bool stopping_ = false;                // guarded by mutex_
  EngineStats stats_;                    // guarded by mutex_
  std::thread thread_;
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_ENGINE_ENGINE_H_
