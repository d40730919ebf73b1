// BlockDecoder: the global stage of a Block Transformer (spec 1.1-1.2): the
// embedder (token embeddings of a block concatenated into one vector) and the
// block decoder stack with its final LayerNorm, producing one context
// embedding per block.
//
// Its KV cache holds one entry per block. Immutable after Load(); Forward()
// runs on the calling thread, one call at a time per backend.
#ifndef BLOCKSERVE_SHARED_MODEL_BLOCK_DECODER_H_
#define BLOCKSERVE_SHARED_MODEL_BLOCK_DECODER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/backend.h"
#include "shared/model/forward_batch.h"
#include "shared/model/kv_cache.h"
#include "shared/model/model_config.h"
#include "shared/model/neox_stack.h"

namespace blockserve {

class BlockDecoder {
 public:
  static absl::StatusOr<BlockDecoder> Load(Backend& backend, const SafetensorsFile& file,
                                           const ModelConfig& config, DType weight_dtype);

  struct Input {
    KvSequence* kv = nullptr;
    // Whole blocks to append: a multiple of block_length() token ids.
    absl::Span<const int32_t> tokens;
    OutputRows output = OutputRows::kLast;
  };

  // Appends every input's blocks to its cache (pages must be reserved for
  // them) and returns the context embeddings (F32 [n, P]) of the requested
  // blocks, in input order. INVALID_ARGUMENT for a token id outside the
  // vocabulary or a partial block; nothing is appended then.
  absl::StatusOr<Tensor> Forward(Backend& backend, const PagedKvCache& cache,
                                 absl::Span<const Input> inputs) const;

  const NeoxStackConfig& stack_config() const { return stack_.config(); }
  int block_length() const { return block_length_; }
  int hidden_size() const { return stack_.config().hidden_size; }

 private:
  BlockDecoder(NeoxStack stack, Tensor embeddings, int block_length, int vocab_size)
      : stack_(std::move(stack)),
        embeddings_(std::move(embeddings)),
        block_length_(block_length),
        vocab_size_(vocab_size) {}

  NeoxStack stack_;
  Tensor embeddings_;  // [V, P / L_B]
  int block_length_;
  int vocab_size_;
};

// INVALID_ARGUMENT naming the first id outside [0, vocab_size).
absl::Status CheckTokenIds(absl::Span<const int32_t> tokens, int vocab_size);

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_MODEL_BLOCK_DECODER_H_
