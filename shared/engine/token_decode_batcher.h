// TokenDecodeBatcher: the local stage. Decodes BlockJobs with continuous
// batching: every Step() runs one token-decoder forward pass over all active
// blocks, whatever step each is at (a new block contributes its R prefix
// rows, a running one its last sampled token), samples one token per block,
// and returns the blocks that finished.
//
// Each active block owns one page of a small local KV cache
// (R + L_B - 1 entries), released the moment the block finishes or is
// cancelled. Holds no state across blocks: the same object serves the
// in-process engine and a token worker.
//
// Thread-compatible: one thread drives Submit/Step/Cancel.
#ifndef BLOCKSERVE_SHARED_ENGINE_TOKEN_DECODE_BATCHER_H_
#define BLOCKSERVE_SHARED_ENGINE_TOKEN_DECODE_BATCHER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "shared/engine/block_job.h"
#include "shared/model/kv_cache.h"
#include "shared/model/token_decoder.h"

namespace blockserve {

class TokenDecodeBatcher {
 public:
  struct Options {
    int max_active_blocks = 256;  // blocks decoded together in one step
  };

  static absl::StatusOr<std::unique_ptr<TokenDecodeBatcher>> Create(const TokenDecoder& decoder,
                                                                    Backend& backend,
                                                                    const Options& options);

  // Queues a job. INVALID_ARGUMENT if the job does not fit the model (context
  // size, token count); nothing is queued then.
  absl::Status Submit(BlockJob job);
  // Drops every queued or active block of the session.
  void CancelSession(uint64_t session_id);

  // Admits queued jobs up to max_active_blocks, runs one step, and returns
  // the blocks that finished in it. An error fails the blocks of this step
  // (returned with a non-OK status) and leaves the batcher usable.
  std::vector<BlockResult> Step();

  bool idle() const { return active_.empty() && queue_.empty(); }
  int active_blocks() const { return static_cast<int>(active_.size()); }
  int queued_blocks() const { return static_cast<int>(queue_.size()); }
  int last_step_batch() const { return last_step_batch_; }

 private:
  struct ActiveBlock {
    BlockJob job;
    KvSequence kv;
    BlockResult result;
    bool started = false;
  };

  TokenDecodeBatcher(const TokenDecoder& decoder, Backend& backend, const Options& options,
                     PagedKvCache cache)
      : decoder_(decoder), backend_(backend), options_(options), cache_(std::move(cache)) {}
  absl::StatusOr<std::vector<BlockResult>> RunStep();

  const TokenDecoder& decoder_;
  Backend& backend_;
  Options options_;
  PagedKvCache cache_;
  std::deque<BlockJob> queue_;
  std::vector<std::unique_ptr<ActiveBlock>> active_;
  int last_step_batch_ = 0;
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_ENGINE_TOKEN_DECODE_BATCHER_H_
