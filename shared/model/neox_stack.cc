#include "shared/model/neox_stack.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "shared/common/logging.h"
#include "shared/common/status_macros.h"
#include "shared/model/checkpoint_layout.h"
#include "shared/weights/safetensors.h"

namespace blockserve {

absl::StatusOr<Tensor> UploadCheckpointTensor(Backend& backend, const SafetensorsFile& file,
                                              const std::string& name, DType dtype,
                                              const Shape& shape) {
  const SafetensorsTensor* source = file.Find(name);
  if (source == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": missing tensor ", name));
  }
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (source->numel() != numel) {
    return absl::InvalidArgumentError(absl::StrCat(file.path(), ": tensor ", name, " has ",
                                                   source->numel(), " elements, expected [",
                                                   absl::StrJoin(shape, ", "), "]"));
  }
  ASSIGN_OR_RETURN(Tensor tensor, backend.Empty(dtype, shape));
  if (source->dtype == dtype) {
    backend.CopyToDevice(source->data, tensor);
  } else {
    // Convert through F32 on the host, one chunk at a time.
    constexpr int64_t kChunk = 1 << 20;
    std::vector<float> f32(std::min(numel, kChunk));
    std::vector<char> converted(f32.size() * DTypeSize(dtype));
    const size_t in_elem = DTypeSize(source->dtype);
    Tensor flat = tensor.Reshape({numel});
    for (int64_t begin = 0; begin < numel; begin += kChunk) {
      const int64_t count = std::min(kChunk, numel - begin);
      ConvertToF32(source->dtype, static_cast<const char*>(source->data) + begin * in_elem,
                   f32.data(), count);
      ConvertFromF32(dtype, f32.data(), converted.data(), count);
      backend.CopyToDevice(converted.data(), flat.Rows(begin, count));
    }
  }
  return tensor;
}

absl::StatusOr<Tensor> UploadMatMulWeight(Backend& backend, const SafetensorsFile& file,
                                          const std::string& name, DType dtype, int64_t rows,
                                          int64_t cols) {
  ASSIGN_OR_RETURN(Tensor tensor, UploadCheckpointTensor(backend, file, name, dtype, {rows, cols}));
  return backend.PrepareMatMulWeight(tensor);
}

absl::StatusOr<NeoxStack> NeoxStack::Load(Backend& backend, const SafetensorsFile& file,
                                          const std::string& prefix,
                                          const NeoxStackConfig& config, DType weight_dtype) {
  NeoxStack stack;
  stack.config_ = config;
  const int64_t d = config.hidden_size;
  const int64_t inner = config.intermediate_size;
  auto vec = [&](const std::string& name, int64_t n) {
    return UploadCheckpointTensor(backend, file, name, DType::kF32, {n});
  };
  auto mat = [&](const std::string& name, int64_t rows, int64_t cols) {
    return UploadMatMulWeight(backend, file, name, weight_dtype, rows, cols);
  };
  for (int i = 0; i < config.num_layers; ++i) {
    auto name = [&](absl::string_view suffix) { return StackTensorName(prefix, i, suffix); };
    NeoxLayerWeights w;
    ASSIGN_OR_RETURN(w.ln1_weight, vec(name(kInputNormWeight), d));
    ASSIGN_OR_RETURN(w.ln1_bias, vec(name(kInputNormBias), d));
    ASSIGN_OR_RETURN(w.ln2_weight, vec(name(kPostAttentionNormWeight), d));
    ASSIGN_OR_RETURN(w.ln2_bias, vec(name(kPostAttentionNormBias), d));
    ASSIGN_OR_RETURN(w.qkv_weight, mat(name(kQkvWeight), 3 * d, d));
    ASSIGN_OR_RETURN(w.qkv_bias, vec(name(kQkvBias), 3 * d));
    ASSIGN_OR_RETURN(w.dense_weight, mat(name(kAttentionDenseWeight), d, d));
    ASSIGN_OR_RETURN(w.dense_bias, vec(name(kAttentionDenseBias), d));
    ASSIGN_OR_RETURN(w.fc1_weight, mat(name(kMlpUpWeight), inner, d));
    ASSIGN_OR_RETURN(w.fc1_bias, vec(name(kMlpUpBias), inner));
    ASSIGN_OR_RETURN(w.fc2_weight, mat(name(kMlpDownWeight), d, inner));
    ASSIGN_OR_RETURN(w.fc2_bias, vec(name(kMlpDownBias), d));
    stack.layers_.push_back(std::move(w));
  }
  ASSIGN_OR_RETURN(stack.final_ln_weight_, vec(StackFinalNormName(prefix, "weight"), d));
  ASSIGN_OR_RETURN(stack.final_ln_bias_, vec(StackFinalNormName(prefix, "bias"), d));
  return stack;
}

absl::Status NeoxStack::Forward(Backend& backend, const Tensor& hidden, const ForwardBatch& batch,
                                const PagedKvCache& cache) const {
  const int64_t rows = hidden.rows();
  const int64_t d = config_.hidden_size;
  CHECK_EQ(rows, batch.rows);
  CHECK_EQ(hidden.cols(), d);
  if (rows == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(Tensor normed, backend.Empty(DType::kF32, {rows, d}));
  ASSIGN_OR_RETURN(Tensor qkv, backend.Empty(DType::kF32, {rows, 3 * d}));
  ASSIGN_OR_RETURN(Tensor attended, backend.Empty(DType::kF32, {rows, d}));
  ASSIGN_OR_RETURN(Tensor inner, backend.Empty(DType::kF32, {rows, config_.intermediate_size}));
  const float eps = static_cast<float>(config_.layer_norm_eps);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const NeoxLayerWeights& w = layers_[i];
    backend.LayerNorm(hidden, w.ln1_weight, w.ln1_bias, eps, normed);
    backend.MatMul(normed, w.qkv_weight, w.qkv_bias, Activation::kNone, false, qkv);
    backend.Rotary(qkv, batch.positions, config_.num_heads, config_.head_dim,
                   config_.rotary_dims, static_cast<float>(config_.rotary_base));
    backend.Attention(qkv, cache.layer(static_cast<int>(i)), batch.layout, config_.num_heads,
                      config_.head_dim, attended);
    if (config_.parallel_residual) {
      // Both branches read the layer input: normalize it before the
      // attention output lands in the residual stream.
      backend.LayerNorm(hidden, w.ln2_weight, w.ln2_bias, eps, normed);
      backend.MatMul(attended, w.dense_weight, w.dense_bias, Activation::kNone, true, hidden);
    } else {
      backend.MatMul(attended, w.dense_weight, w.dense_bias, Activation::kNone, true, hidden);
      backend.LayerNorm(hidden, w.ln2_weight, w.ln2_bias, eps, normed);
    }
    backend.MatMul(normed, w.fc1_weight, w.fc1_bias, Activation::kGelu, false, inner);
    backend.MatMul(inner, w.fc2_weight, w.fc2_bias, Activation::kNone, true, hidden);
  }
  return absl::OkStatus();
}

void NeoxStack::FinalNorm(Backend& backend, const Tensor& x, const Tensor& out) const {
  backend.LayerNorm(x, final_ln_weight_, final_ln_bias_,
                    static_cast<float>(config_.layer_norm_eps), out);
}

}  // namespace blockserve
