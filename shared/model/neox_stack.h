// NeoxStack: one stack of GPT-NeoX layers (spec section 2) on a backend: its
// weights and its batched forward pass over a paged KV cache.
//
// The block decoder, the token decoder and a vanilla model are each one
// NeoxStack; they differ only in what rows they feed in and read out.
// Weights are immutable after construction; Forward() may be called from one
// thread at a time per backend.
#ifndef BLOCKSERVE_SHARED_MODEL_NEOX_STACK_H_
#define BLOCKSERVE_SHARED_MODEL_NEOX_STACK_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "shared/model/forward_batch.h"
#include "shared/model/kv_cache.h"
#include "shared/model/model_config.h"

namespace blockserve {

class SafetensorsFile;

struct NeoxLayerWeights {
  Tensor ln1_weight, ln1_bias;  // input_layernorm: feeds attention
  Tensor ln2_weight, ln2_bias;  // post_attention_layernorm: feeds the MLP
  Tensor qkv_weight, qkv_bias;  // [3D, D], per-head (q, k, v) layout
  Tensor dense_weight, dense_bias;
  Tensor fc1_weight, fc1_bias;  // dense_h_to_4h
  Tensor fc2_weight, fc2_bias;  // dense_4h_to_h
};

class NeoxStack {
 public:
  // Loads `prefix`.layers.N.* and `prefix`.final_layer_norm.* (prefix e.g.
  // "block_decoder.gpt_neox") from `file` onto `backend`, matrices in
  // `weight_dtype`, vectors in F32.
  static absl::StatusOr<NeoxStack> Load(Backend& backend, const SafetensorsFile& file,
                                        const std::string& prefix, const NeoxStackConfig& config,
                                        DType weight_dtype);

  const NeoxStackConfig& config() const { return config_; }

  // Runs every layer over `hidden` (F32 [rows, D], the residual stream,
  // updated in place), appending each row's keys and values to `cache`.
  absl::Status Forward(Backend& backend, const Tensor& hidden, const ForwardBatch& batch,
                       const PagedKvCache& cache) const;

  // out = final_layer_norm(x), row by row.
  void FinalNorm(Backend& backend, const Tensor& x, const Tensor& out) const;

 private:
  NeoxStackConfig config_;
  std::vector<NeoxLayerWeights> layers_;
  Tensor final_ln_weight_, final_ln_bias_;
};

// Copies checkpoint tensor `name` to the backend, converted to `dtype`
// (F32, F16 or BF16) and viewed as `shape` (same element count).
absl::StatusOr<Tensor> UploadCheckpointTensor(Backend& backend, const SafetensorsFile& file,
                                              const std::string& name, DType dtype,
                                              const Shape& shape);

// UploadCheckpointTensor for a MatMul weight [rows, cols], then repacked
// by the backend for its MatMul (Backend::PrepareMatMulWeight).
absl::StatusOr<Tensor> UploadMatMulWeight(Backend& backend, const SafetensorsFile& file,
                                          const std::string& name, DType dtype, int64_t rows,
                                          int64_t cols);

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_MODEL_NEOX_STACK_H_
