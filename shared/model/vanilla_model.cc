#include "shared/model/vanilla_model.h"

#include <vector>

#include "shared/common/status_macros.h"
#include "shared/model/checkpoint_layout.h"
#include "shared/model/block_decoder.h"

namespace blockserve {

absl::StatusOr<VanillaModel> VanillaModel::Load(Backend& backend, const SafetensorsFile& file,
                                                const ModelConfig& config, DType weight_dtype) {
  VanillaModel model;
  const int64_t d = config.vanilla.hidden_size;
  ASSIGN_OR_RETURN(model.stack_,
                   NeoxStack::Load(backend, file, std::string(kVanillaPrefix), config.vanilla, weight_dtype));
  ASSIGN_OR_RETURN(model.embed_in_, UploadCheckpointTensor(backend, file, std::string(kVanillaEmbedInName),
                                                           weight_dtype, {config.vocab_size, d}));
  ASSIGN_OR_RETURN(model.embed_out_,
                   UploadMatMulWeight(backend, file, std::string(kVanillaEmbedOutName),
                                      weight_dtype, config.vocab_size, d));
  model.vocab_size_ = config.vocab_size;
  return model;
}

absl::StatusOr<Tensor> VanillaModel::Forward(Backend& backend, const PagedKvCache& cache,
                                             absl::Span<const Input> inputs) const {
  const int64_t d = stack_.config().hidden_size;
  std::vector<int32_t> ids;
  std::vector<ForwardSequence> sequences;
  std::vector<int32_t> out_rows;
  int32_t row = 0;
  for (const Input& input : inputs) {
    RETURN_IF_ERROR(CheckTokenIds(input.tokens, vocab_size_));
    const int32_t n = static_cast<int32_t>(input.tokens.size());
    ids.insert(ids.end(), input.tokens.begin(), input.tokens.end());
    sequences.push_back({input.kv, n});
    if (n > 0 && input.output == OutputRows::kLast) out_rows.push_back(row + n - 1);
    if (input.output == OutputRows::kAll) {
      for (int32_t i = 0; i < n; ++i) out_rows.push_back(row + i);
    }
    row += n;
  }
  ASSIGN_OR_RETURN(ForwardBatch batch, BuildForwardBatch(backend, sequences, cache));
  ASSIGN_OR_RETURN(Tensor hidden, backend.Empty(DType::kF32, {row, d}));
  ASSIGN_OR_RETURN(Tensor id_tensor, UploadI32(backend, ids));
  backend.CopyRows(embed_in_, id_tensor, hidden, Tensor());
  RETURN_IF_ERROR(stack_.Forward(backend, hidden, batch, cache));

  const int64_t n = static_cast<int64_t>(out_rows.size());
  ASSIGN_OR_RETURN(Tensor logits, backend.Empty(DType::kF32, {n, vocab_size_}));
  if (n > 0) {
    ASSIGN_OR_RETURN(Tensor gathered, backend.Empty(DType::kF32, {n, d}));
    ASSIGN_OR_RETURN(Tensor rows_tensor, UploadI32(backend, out_rows));
    backend.CopyRows(hidden, rows_tensor, gathered, Tensor());
    stack_.FinalNorm(backend, gathered, gathered);
    backend.MatMul(gathered, embed_out_, Tensor(), Activation::kNone, false, logits);
  }
  return logits;
}

}  // namespace blockserve
