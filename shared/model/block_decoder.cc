#include "shared/model/block_decoder.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "shared/common/status_macros.h"
#include "shared/model/checkpoint_layout.h"

namespace blockserve {

absl::Status CheckTokenIds(absl::Span<const int32_t> tokens, int vocab_size) {
  for (int32_t id : tokens) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " is outside the vocabulary [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<BlockDecoder> BlockDecoder::Load(Backend& backend, const SafetensorsFile& file,
                                                const ModelConfig& config, DType weight_dtype) {
  ASSIGN_OR_RETURN(NeoxStack stack, NeoxStack::Load(backend, file, std::string(kBlockDecoderPrefix),
                                                    config.block_decoder, weight_dtype));
  ASSIGN_OR_RETURN(Tensor embeddings,
                   UploadCheckpointTensor(backend, file, std::string(kEmbedderName),
                                          weight_dtype, {config.vocab_size, config.embedder_dim}));
  return BlockDecoder(std::move(stack), std::move(embeddings), config.block_length,
                      config.vocab_size);
}

absl::StatusOr<Tensor> BlockDecoder::Forward(Backend& backend, const PagedKvCache& cache,
                                             absl::Span<const Input> inputs) const {
  std::vector<int32_t> ids;
  std::vector<ForwardSequence> sequences;
  sequences.reserve(inputs.size());
  for (const Input& input : inputs) {
    if (input.tokens.size() % block_length_ != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "block decoder input of ", input.tokens.size(), " tokens is not whole blocks of ",
          block_length_));
    }
    RETURN_IF_ERROR(CheckTokenIds(input.tokens, vocab_size_));
    ids.insert(ids.end(), input.tokens.begin(), input.tokens.end());
    sequences.push_back({input.kv, static_cast<int32_t>(input.tokens.size() / block_length_)});
  }
  const int64_t d = hidden_size();
  const int64_t num_blocks = static_cast<int64_t>(ids.size()) / block_length_;
  ASSIGN_OR_RETURN(ForwardBatch batch, BuildForwardBatch(backend, sequences, cache));

  // Embedding: token i of a block fills dims [i * P/L_B, (i+1) * P/L_B), so
  // gathering token rows into a [blocks * L_B, P/L_B] view concatenates them.
  ASSIGN_OR_RETURN(Tensor hidden, backend.Empty(DType::kF32, {num_blocks, d}));
  ASSIGN_OR_RETURN(Tensor id_tensor, UploadI32(backend, ids));
  backend.CopyRows(embeddings_, id_tensor, hidden.Reshape({num_blocks * block_length_, d / block_length_}),
                   Tensor());
  RETURN_IF_ERROR(stack_.Forward(backend, hidden, batch, cache));

  std::vector<int32_t> out_rows;
  for (size_t s = 0; s < inputs.size(); ++s) {
    const int32_t begin = batch.row_starts[s];
    const int32_t end = batch.row_starts[s + 1];
    if (begin == end) continue;
    if (inputs[s].output == OutputRows::kLast) out_rows.push_back(end - 1);
    if (inputs[s].output == OutputRows::kAll) {
      for (int32_t r = begin; r < end; ++r) out_rows.push_back(r);
    }
  }
  const int64_t n = static_cast<int64_t>(out_rows.size());
  ASSIGN_OR_RETURN(Tensor gathered, backend.Empty(DType::kF32, {n, d}));
  ASSIGN_OR_RETURN(Tensor contexts, backend.Empty(DType::kF32, {n, d}));
  if (n > 0) {
    ASSIGN_OR_RETURN(Tensor row_tensor, UploadI32(backend, out_rows));
    backend.CopyRows(hidden, row_tensor, gathered, Tensor());
    stack_.FinalNorm(backend, gathered, contexts);
  }
  return contexts;
}

}  // namespace blockserve
