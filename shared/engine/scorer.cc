#include "shared/engine/scorer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "shared/common/status_macros.h"

namespace blockserve {
namespace {

// Log-probabilities of `targets` under `logits` (F32 [n, V] on the backend).
absl::StatusOr<std::vector<float>> TargetLogProbsOnHost(Backend& backend, const Tensor& logits,
                                                        absl::Span<const int32_t> targets) {
  const int64_t n = static_cast<int64_t>(targets.size());
  ASSIGN_OR_RETURN(Tensor target_tensor, UploadI32(backend, targets));
  ASSIGN_OR_RETURN(Tensor out, backend.Empty(DType::kF32, {n}));
  backend.TargetLogProbs(logits.Rows(0, n), target_tensor, out);
  std::vector<float> host(n);
  backend.CopyToHost(out, host.data());
  RETURN_IF_ERROR(backend.Synchronize());
  return host;
}

absl::Status ScoreBlockModel(const Model& model, absl::Span<const int32_t> tokens,
                             const ScoreOptions& options, ScoreResult& result) {
  const ModelConfig& config = model.config();
  Backend& backend = model.backend();
  const BlockDecoder& block_decoder = *model.block_decoder();
  const TokenDecoder& token_decoder = *model.token_decoder();
  const int block_length = config.block_length;
  const int64_t pad = (block_length - static_cast<int64_t>(tokens.size()) % block_length) % block_length;
  std::vector<int32_t> padded(pad, config.eos_token_id);
  padded.insert(padded.end(), tokens.begin(), tokens.end());
  const int64_t num_blocks = static_cast<int64_t>(padded.size()) / block_length;
  if (num_blocks < 2) return absl::OkStatus();  // nothing to score

  // Global stage: context embeddings of blocks 0 .. num_blocks - 2.
  ASSIGN_OR_RETURN(PagedKvCache block_cache,
                   PagedKvCache::Create(backend, block_decoder.stack_config(), 64,
                                        static_cast<int>((num_blocks + 63) / 64)));
  KvSequence block_kv;
  RETURN_IF_ERROR(block_cache.Reserve(block_kv, num_blocks - 1));
  const int64_t p = block_decoder.hidden_size();
  std::vector<float> contexts((num_blocks - 1) * p);
  for (int64_t begin = 0; begin < num_blocks - 1; begin += options.chunk_rows) {
    const int64_t count = std::min<int64_t>(options.chunk_rows, num_blocks - 1 - begin);
    BlockDecoder::Input input{&block_kv,
                              absl::MakeConstSpan(padded).subspan(begin * block_length,
                                                                  count * block_length),
                              OutputRows::kAll};
    ASSIGN_OR_RETURN(Tensor chunk, block_decoder.Forward(backend, block_cache, {input}));
    backend.CopyToHost(chunk, contexts.data() + begin * p);
    RETURN_IF_ERROR(backend.Synchronize());
  }

  // Local stage: block b (>= 1) teacher-forced from context b - 1.
  const int batch_blocks = std::max(1, options.token_decoder_blocks);
  ASSIGN_OR_RETURN(PagedKvCache token_cache,
                   PagedKvCache::Create(backend, token_decoder.stack_config(),
                                        token_decoder.max_block_entries(), batch_blocks));
  for (int64_t first = 1; first < num_blocks; first += batch_blocks) {
    const int64_t count = std::min<int64_t>(batch_blocks, num_blocks - first);
    std::vector<KvSequence> kvs(count);
    std::vector<TokenDecoder::Input> inputs;
    std::vector<int32_t> targets;
    for (int64_t i = 0; i < count; ++i) {
      RETURN_IF_ERROR(token_cache.Reserve(kvs[i], token_decoder.max_block_entries()));
      const auto block = absl::MakeConstSpan(padded).subspan((first + i) * block_length,
                                                             block_length);
      inputs.push_back({&kvs[i], static_cast<int32_t>(i), block.first(block_length - 1),
                        OutputRows::kAll});
      targets.insert(targets.end(), block.begin(), block.end());
    }
    ASSIGN_OR_RETURN(Tensor context_tensor, backend.Empty(DType::kF32, {count, p}));
    backend.CopyToDevice(contexts.data() + (first - 1) * p, context_tensor);
    ASSIGN_OR_RETURN(Tensor logits,
                     token_decoder.Forward(backend, token_cache, context_tensor, inputs));
    ASSIGN_OR_RETURN(std::vector<float> logprobs,
                     TargetLogProbsOnHost(backend, logits, targets));
    for (KvSequence& kv : kvs) token_cache.Release(kv);
    for (int64_t i = 0; i < static_cast<int64_t>(logprobs.size()); ++i) {
      const int64_t original = first * block_length + i - pad;
      result.logprobs[original] = logprobs[i];
    }
  }
  return absl::OkStatus();
}

absl::Status ScoreVanillaModel(const Model& model, absl::Span<const int32_t> tokens,
                               const ScoreOptions& options, ScoreResult& result) {
  Backend& backend = model.backend();
  const VanillaModel& vanilla = *model.vanilla();
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < 2) return absl::OkStatus();
  ASSIGN_OR_RETURN(PagedKvCache cache, PagedKvCache::Create(backend, vanilla.stack_config(), 64,
                                                            static_cast<int>((n + 63) / 64)));
  KvSequence kv;
  RETURN_IF_ERROR(cache.Reserve(kv, n - 1));
  // Row i predicts token i + 1; the last token predicts nothing.
  for (int64_t begin = 0; begin < n - 1; begin += options.chunk_rows) {
    const int64_t count = std::min<int64_t>(options.chunk_rows, n - 1 - begin);
    VanillaModel::Input input{&kv, tokens.subspan(begin, count), OutputRows::kAll};
    ASSIGN_OR_RETURN(Tensor logits, vanilla.Forward(backend, cache, {input}));
    ASSIGN_OR_RETURN(std::vector<float> logprobs,
                     TargetLogProbsOnHost(backend, logits, tokens.subspan(begin + 1, count)));
    for (int64_t i = 0; i < count; ++i) result.logprobs[begin + 1 + i] = logprobs[i];
  }
  return absl::OkStatus();
}

}  // namespace

double ScoreResult::perplexity() const {
  if (scored_tokens == 0) return std::numeric_limits<double>::quiet_NaN();
  return std::exp(nll / static_cast<double>(scored_tokens));
}

absl::StatusOr<ScoreResult> ScoreTokens(const Model& model, absl::Span<const int32_t> tokens,
                                        const ScoreOptions& options) {
  if (tokens.empty()) return absl::InvalidArgumentError("nothing to score: no tokens");
  if (options.chunk_rows < 1) return absl::InvalidArgumentError("chunk_rows must be >= 1");
  RETURN_IF_ERROR(CheckTokenIds(tokens, model.config().vocab_size));
  ScoreResult result;
  result.logprobs.resize(tokens.size());
  if (model.is_block()) {
    if (model.block_decoder() == nullptr || model.token_decoder() == nullptr) {
      return absl::FailedPreconditionError("scoring needs the whole block model loaded");
    }
    RETURN_IF_ERROR(ScoreBlockModel(model, tokens, options, result));
  } else {
    RETURN_IF_ERROR(ScoreVanillaModel(model, tokens, options, result));
  }
  for (const std::optional<float>& logprob : result.logprobs) {
    if (!logprob.has_value()) continue;
    result.nll -= *logprob;
    ++result.scored_tokens;
  }
  return result;
}

}  // namespace blockserve
