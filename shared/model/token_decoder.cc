#include "shared/model/token_decoder.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "shared/common/status_macros.h"
#include "shared/model/checkpoint_layout.h"
#include "shared/model/block_decoder.h"

namespace blockserve {

absl::StatusOr<TokenDecoder> TokenDecoder::Load(Backend& backend, const SafetensorsFile& file,
                                                const ModelConfig& config, DType weight_dtype) {
  TokenDecoder decoder;
  const int64_t h = config.token_decoder.hidden_size;
  const int64_t p = config.block_decoder.hidden_size;
  const int64_t r = config.expansion_ratio;
  ASSIGN_OR_RETURN(decoder.stack_, NeoxStack::Load(backend, file, std::string(kTokenDecoderPrefix),
                                                   config.token_decoder, weight_dtype));
  ASSIGN_OR_RETURN(decoder.expansion_weight_,
                   UploadMatMulWeight(backend, file, std::string(kExpansionWeightName),
                                      weight_dtype, r * h, p));
  ASSIGN_OR_RETURN(decoder.expansion_bias_,
                   UploadCheckpointTensor(backend, file, std::string(kExpansionBiasName),
                                          DType::kF32, {r * h}));
  ASSIGN_OR_RETURN(decoder.embed_in_,
                   UploadCheckpointTensor(backend, file, std::string(kTokenEmbedInName),
                                          weight_dtype, {config.vocab_size, h}));
  ASSIGN_OR_RETURN(decoder.embed_out_,
                   UploadMatMulWeight(backend, file, std::string(kTokenEmbedOutName),
                                      weight_dtype, config.vocab_size, h));
  decoder.expansion_ratio_ = config.expansion_ratio;
  decoder.block_length_ = config.block_length;
  decoder.context_size_ = config.block_decoder.hidden_size;
  decoder.vocab_size_ = config.vocab_size;
  return decoder;
}

absl::StatusOr<Tensor> TokenDecoder::Forward(Backend& backend, const PagedKvCache& cache,
                                             const Tensor& contexts,
                                             absl::Span<const Input> inputs) const {
  const int64_t h = stack_.config().hidden_size;
  const int r = expansion_ratio_;
  std::vector<ForwardSequence> sequences;
  sequences.reserve(inputs.size());
  // Where each new row comes from: a prefix vector (row of the expanded
  // contexts viewed as [contexts * R, H]) or a token embedding.
  std::vector<int32_t> prefix_src, prefix_dst, token_ids, token_dst, out_rows;
  int32_t row = 0;
  for (const Input& input : inputs) {
    RETURN_IF_ERROR(CheckTokenIds(input.tokens, vocab_size_));
    const int32_t first_position = input.kv->length;
    int32_t new_rows = static_cast<int32_t>(input.tokens.size());
    if (input.context_row >= 0) {
      if (input.context_row >= contexts.rows()) {
        return absl::InvalidArgumentError(absl::StrCat("context row ", input.context_row,
                                                       " out of ", contexts.rows()));
      }
      for (int i = 0; i < r; ++i) {
        prefix_src.push_back(input.context_row * r + i);
        prefix_dst.push_back(row + i);
      }
      new_rows += r;
    }
    if (first_position + new_rows > max_block_entries()) {
      return absl::InvalidArgumentError(absl::StrCat("token decoder block of ",
                                                     first_position + new_rows,
                                                     " entries exceeds R + L_B - 1 = ",
                                                     max_block_entries()));
    }
    const int32_t token_begin = row + (input.context_row >= 0 ? r : 0);
    for (size_t i = 0; i < input.tokens.size(); ++i) {
      token_ids.push_back(input.tokens[i]);
      token_dst.push_back(token_begin + static_cast<int32_t>(i));
    }
    if (new_rows > 0) {
      if (input.output == OutputRows::kLast) out_rows.push_back(row + new_rows - 1);
      if (input.output == OutputRows::kAll) {
        for (int32_t i = 0; i < new_rows; ++i) {
          if (first_position + i >= r - 1) out_rows.push_back(row + i);
        }
      }
    }
    sequences.push_back({input.kv, new_rows});
    row += new_rows;
  }
  ASSIGN_OR_RETURN(Tensor hidden, backend.Empty(DType::kF32, {row, h}));
  if (!prefix_src.empty()) {
    ASSIGN_OR_RETURN(Tensor expanded, backend.Empty(DType::kF32, {contexts.rows(), r * h}));
    backend.MatMul(contexts, expansion_weight_, expansion_bias_, Activation::kNone, false,
                   expanded);
    ASSIGN_OR_RETURN(Tensor src, UploadI32(backend, prefix_src));
    ASSIGN_OR_RETURN(Tensor dst, UploadI32(backend, prefix_dst));
    backend.CopyRows(expanded.Reshape({contexts.rows() * r, h}), src, hidden, dst);
  }
  if (!token_ids.empty()) {
    ASSIGN_OR_RETURN(Tensor src, UploadI32(backend, token_ids));
    ASSIGN_OR_RETURN(Tensor dst, UploadI32(backend, token_dst));
    backend.CopyRows(embed_in_, src, hidden, dst);
  }
  ASSIGN_OR_RETURN(ForwardBatch batch, BuildForwardBatch(backend, sequences, cache));
  RETURN_IF_ERROR(stack_.Forward(backend, hidden, batch, cache));

  const int64_t n = static_cast<int64_t>(out_rows.size());
  ASSIGN_OR_RETURN(Tensor logits, backend.Empty(DType::kF32, {n, vocab_size_}));
  if (n > 0) {
    ASSIGN_OR_RETURN(Tensor gathered, backend.Empty(DType::kF32, {n, h}));
    ASSIGN_OR_RETURN(Tensor rows_tensor, UploadI32(backend, out_rows));
    backend.CopyRows(hidden, rows_tensor, gathered, Tensor());
    stack_.FinalNorm(backend, gathered, gathered);
    backend.MatMul(gathered, embed_out_, Tensor(), Activation::kNone, false, logits);
  }
  return logits;
}

}  // namespace blockserve
