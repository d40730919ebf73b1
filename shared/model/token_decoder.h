// TokenDecoder: the local stage of a Block Transformer (spec 1.3): expands a
// context embedding into R prefix vectors, runs the token decoder stack over
// [prefix_0..prefix_{R-1}, E[x_0]..E[x_{L_B-2}]] and projects to logits.
//
// Every "sequence" here is one block being decoded; its KV cache holds at
// most R + L_B - 1 entries (one page) and is dropped when the block is done,
// so the token decoder keeps no state between blocks. Immutable after
// Load(); Forward() runs on the calling thread, one call at a time per
// backend.
#ifndef BLOCKSERVE_SHARED_MODEL_TOKEN_DECODER_H_
#define BLOCKSERVE_SHARED_MODEL_TOKEN_DECODER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/backend.h"
#include "shared/model/forward_batch.h"
#include "shared/model/kv_cache.h"
#include "shared/model/model_config.h"
#include "shared/model/neox_stack.h"

namespace blockserve {

class TokenDecoder {
 public:
  static absl::StatusOr<TokenDecoder> Load(Backend& backend, const SafetensorsFile& file,
                                           const ModelConfig& config, DType weight_dtype);

  struct Input {
    KvSequence* kv = nullptr;
    // Row of the `contexts` argument whose R prefix vectors start this
    // block (its first step), or -1 when the block is already under way.
    int32_t context_row = -1;
    // Token ids appended after the prefix (or after the cached entries).
    absl::Span<const int32_t> tokens;
    // kLast: logits of the last new row. kAll: logits of every new row that
    // predicts a token of the block (sequence positions >= R - 1).
    OutputRows output = OutputRows::kLast;
  };

  // Appends every input's rows to its cache (pages reserved by the caller)
  // and returns the logits (F32 [n, V]) of the requested rows, in input
  // order. `contexts`: F32 [num_contexts, P] on the backend (may be empty
  // when no input starts a block).
  absl::StatusOr<Tensor> Forward(Backend& backend, const PagedKvCache& cache,
                                 const Tensor& contexts, absl::Span<const Input> inputs) const;

  const NeoxStackConfig& stack_config() const { return stack_.config(); }
  int expansion_ratio() const { return expansion_ratio_; }
  int block_length() const { return block_length_; }
  int context_size() const { return context_size_; }
  int vocab_size() const { return vocab_size_; }
  // Entries one block needs in the local KV cache: R + L_B - 1.
  int max_block_entries() const { return expansion_ratio_ + block_length_ - 1; }

 private:
  TokenDecoder() = default;

  NeoxStack stack_;
  Tensor expansion_weight_;  // [R * H, P]
  Tensor expansion_bias_;    // [R * H]
  Tensor embed_in_;          // [V, H]
  Tensor embed_out_;         // [V, H]
  int expansion_ratio_ = 0;
  int block_length_ = 0;
  int context_size_ = 0;
  int vocab_size_ = 0;
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_MODEL_TOKEN_DECODER_H_
