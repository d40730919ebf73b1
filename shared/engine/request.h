// The vocabulary of generation shared by the engine, its stages and the
// services: what a request asks for, how sampling is set, why a generation
// finished, and the incremental updates a request produces.
//
// Plain value types; thread-compatible.
#ifndef BLOCKSERVE_SHARED_ENGINE_REQUEST_H_
#define BLOCKSERVE_SHARED_ENGINE_REQUEST_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "kernels/backend.h"
#include "shared/model/model_config.h"

namespace blockserve {

struct SamplingParams {
  float temperature = 0.0f;  // <= 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  uint64_t seed = 0;

  bool greedy() const { return temperature <= 0.0f; }
  // The kernel's per-token settings for the token at `position`.
  SamplingRow Row(int64_t position) const { return {temperature, top_k, top_p, seed, position}; }
};

struct GenerationRequest {
  std::vector<int32_t> prompt;  // token ids, at least one
  int32_t max_new_tokens = 16;
  SamplingParams sampling;
  bool stop_at_eos = true;
  bool return_logprobs = false;
};

enum class FinishReason : uint8_t { kNone, kLength, kEos, kStop, kCancelled, kError };

// "length", "eos", "stop", "cancelled", "error" ("" for kNone).
absl::string_view FinishReasonName(FinishReason reason);

// New output of one request. Updates of a request arrive in order; the last
// one has finished == true (and a non-OK status when it failed).
struct GenerationUpdate {
  uint64_t request_id = 0;
  std::vector<int32_t> tokens;  // newly generated ids
  std::vector<float> logprobs;  // one per token when requested, else empty
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
  absl::Status status;
};

// Checks a request against a model: non-empty prompt of in-vocabulary ids,
// max_new_tokens >= 1, sampling settings in range, total length within the
// model's limit. INVALID_ARGUMENT with a message naming the field.
absl::Status ValidateRequest(const GenerationRequest& request, const ModelConfig& config);

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_ENGINE_REQUEST_H_
