// VanillaScheduler: continuous batching for a vanilla GPT-NeoX model, the
// paper's baseline. Each Step() runs one forward pass over every running
// sequence's last token plus prefill chunks of new prompts (within a row
// budget), samples one token for each sequence that reached the end of its
// input, and reports the updates.
//
// Sessions wait in FIFO order until the per-token KV cache can hold their
// whole generation. Memory is freed the moment a sequence finishes, fails or
// is cancelled. Thread-compatible: one thread drives it.
#ifndef BLOCKSERVE_SHARED_ENGINE_VANILLA_SCHEDULER_H_
#define BLOCKSERVE_SHARED_ENGINE_VANILLA_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "shared/engine/request.h"
#include "shared/model/kv_cache.h"
#include "shared/model/vanilla_model.h"

namespace blockserve {

class VanillaScheduler {
 public:
  struct Options {
    int64_t kv_cache_bytes = int64_t{1} << 30;
    int page_size = 16;  // tokens per KV page
    int max_sessions = 256;
    int max_step_tokens = 512;     // rows per forward pass
    DType kv_dtype = DType::kF32;  // KV entries: F32 or F16
  };
  struct Stats {
    int waiting_sessions = 0;
    int active_sessions = 0;
    int64_t kv_used_bytes = 0;
    int64_t kv_capacity_bytes = 0;
    int last_step_rows = 0;
  };

  static absl::StatusOr<std::unique_ptr<VanillaScheduler>> Create(const VanillaModel& model,
                                                                  Backend& backend,
                                                                  const ModelConfig& config,
                                                                  const Options& options);

  absl::Status AddSession(uint64_t id, GenerationRequest request);
  bool CancelSession(uint64_t id);
  // One forward pass; returns the updates it produced.
  std::vector<GenerationUpdate> Step();
  bool HasStepWork() const;
  bool HasSessions() const { return !sessions_.empty(); }
  Stats stats() const;

 private:
  struct Session {
    uint64_t id = 0;
    GenerationRequest request;
    KvSequence kv;
    bool admitted = false;
    int64_t prefilled = 0;  // prompt tokens in the cache
    int32_t generated = 0;
    int32_t last_token = -1;  // sampled, not yet in the cache
  };

  VanillaScheduler(const VanillaModel& model, Backend& backend, const ModelConfig& config,
                   const Options& options, PagedKvCache cache)
      : model_(model),
        backend_(backend),
        config_(config),
        options_(options),
        cache_(std::move(cache)) {}
  int64_t EntriesNeeded(const Session& session) const;
  void Admit();
  void Finish(uint64_t id);

  const VanillaModel& model_;
  Backend& backend_;
  ModelConfig config_;
  Options options_;
  PagedKvCache cache_;
  std::map<uint64_t, Session> sessions_;
  std::deque<uint64_t> waiting_;
  int active_sessions_ = 0;
  int last_step_rows_ = 0;
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_ENGINE_VANILLA_SCHEDULER_H_
