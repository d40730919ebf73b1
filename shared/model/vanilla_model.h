// VanillaModel: a GPT-NeoX (Pythia) language model, the baseline the paper
// compares Block Transformers against: token embeddings, one NeoX stack with
// a per-token KV cache, final LayerNorm and the vocabulary projection.
//
// Immutable after Load(); Forward() runs on the calling thread, one call at a
// time per backend.
#ifndef BLOCKSERVE_SHARED_MODEL_VANILLA_MODEL_H_
#define BLOCKSERVE_SHARED_MODEL_VANILLA_MODEL_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/backend.h"
#include "shared/model/forward_batch.h"
#include "shared/model/kv_cache.h"
#include "shared/model/model_config.h"
#include "shared/model/neox_stack.h"

namespace blockserve {

class VanillaModel {
 public:
  static absl::StatusOr<VanillaModel> Load(Backend& backend, const SafetensorsFile& file,
                                           const ModelConfig& config, DType weight_dtype);

  struct Input {
    KvSequence* kv = nullptr;
    absl::Span<const int32_t> tokens;  // appended after the cached tokens
    OutputRows output = OutputRows::kLast;
  };

  // Appends every input's tokens to its cache (pages reserved by the
  // caller) and returns the logits (F32 [n, V]) of the requested rows, in
  // input order. Only those rows go through the final norm and the
  // vocabulary projection.
  absl::StatusOr<Tensor> Forward(Backend& backend, const PagedKvCache& cache,
                                 absl::Span<const Input> inputs) const;

  const NeoxStackConfig& stack_config() const { return stack_.config(); }
  int vocab_size() const { return vocab_size_; }

 private:
  VanillaModel() = default;

  NeoxStack stack_;
  Tensor embed_in_;   // [V, D]
  Tensor embed_out_;  // [V, D]
  int vocab_size_ = 0;
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_MODEL_VANILLA_MODEL_H_
