// Scoring: the log-probability the model gives every token of a sequence
// (teacher forcing), for perplexity and for checking the engine against the
// reference implementation.
//
// Block Transformer: the sequence is left-padded with EOS to whole blocks;
// block b >= 1 is predicted from the context embedding of block b - 1, so the
// tokens of the first (padded) block are not scored. Vanilla: every token but
// the first is scored. Long sequences are processed in chunks with a private
// KV cache, so memory stays bounded. Synchronous; uses the model's backend
// from the calling thread (not concurrently with an Engine on the same
// backend).
#ifndef BLOCKSERVE_SHARED_ENGINE_SCORER_H_
#define BLOCKSERVE_SHARED_ENGINE_SCORER_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "shared/model/model.h"

namespace blockserve {

struct ScoreResult {
  std::vector<std::optional<float>> logprobs;  // one per input token
  double nll = 0.0;           // negative log-likelihood summed over scored tokens
  int64_t scored_tokens = 0;
  double perplexity() const;  // exp(nll / scored_tokens); NaN when nothing was scored
};

struct ScoreOptions {
  int chunk_rows = 256;  // block-decoder blocks / vanilla tokens per forward pass
  int token_decoder_blocks = 64;  // blocks per token-decoder pass
};

absl::StatusOr<ScoreResult> ScoreTokens(const Model& model, absl::Span<const int32_t> tokens,
                                        const ScoreOptions& options = {});

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_ENGINE_SCORER_H_
