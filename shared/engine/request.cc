#include "shared/engine/request.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace blockserve {

absl::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "";
    case FinishReason::kLength: return "length";
    case FinishReason::kEos: return "eos";
    case FinishReason::kStop: return "stop";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "";
}

absl::Status ValidateRequest(const GenerationRequest& request, const ModelConfig& config) {
  if (request.prompt.empty()) {
    return absl::InvalidArgumentError("prompt must contain at least one token");
  }
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    const int32_t id = request.prompt[i];
    if (id < 0 || id >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token ", i, " has id ", id,
                                                     ", outside the vocabulary [0, ",
                                                     config.vocab_size, ")"));
    }
  }
  if (request.max_new_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_new_tokens must be at least 1, got ", request.max_new_tokens));
  }
  const SamplingParams& s = request.sampling;
  if (!std::isfinite(s.temperature) || s.temperature < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be a finite number >= 0, got ", s.temperature));
  }
  if (s.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0, got ", s.top_k));
  }
  if (!(s.top_p > 0.0f && s.top_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", s.top_p));
  }
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.max_new_tokens;
  if (config.max_sequence_length > 0 && total > config.max_sequence_length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", request.prompt.size(), " tokens) plus max_new_tokens (",
        request.max_new_tokens, ") exceeds the model's maximum sequence length of ",
        config.max_sequence_length));
  }
  return absl::OkStatus();
}

}  // namespace blockserve
