#include "services/gateway/request_validation.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "services/common/proto_convert.h"
#include "shared/common/status_macros.h"

namespace blockserve::services {
namespace {

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

}  // namespace

absl::Status CheckGenerateRequest(const v1::GenerateRequest& request, const v1::ModelInfo& model,
                                  bool has_tokenizer, const GatewayLimits& limits) {
  switch (request.prompt_case()) {
    case v1::GenerateRequest::PROMPT_NOT_SET:
      return Invalid("prompt is missing: set text or token_ids");
    case v1::GenerateRequest::kText:
      if (request.text().empty()) return Invalid("prompt text is empty");
      if (request.text().size() > limits.max_prompt_bytes) {
        return Invalid(absl::StrCat("prompt text is ", request.text().size(),
                                    " bytes, more than the limit of ", limits.max_prompt_bytes));
      }
      if (!has_tokenizer) {
        return Invalid("this gateway has no tokenizer: send the prompt as token_ids");
      }
      break;
    case v1::GenerateRequest::kTokenIds: {
      const auto& ids = request.token_ids().ids();
      if (ids.empty()) return Invalid("prompt token_ids is empty");
      for (int i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= model.vocab_size()) {
          return Invalid(absl::StrCat("token_ids[", i, "] = ", ids[i],
                                      " is outside the vocabulary [0, ", model.vocab_size(), ")"));
        }
      }
      break;
    }
  }
  if (request.has_max_new_tokens() &&
      (request.max_new_tokens() < 1 || request.max_new_tokens() > limits.max_new_tokens_limit)) {
    return Invalid(absl::StrCat("max_new_tokens must be between 1 and ",
                                limits.max_new_tokens_limit, ", got ", request.max_new_tokens()));
  }
  const v1::SamplingParams& sampling = request.sampling();
  if (!std::isfinite(sampling.temperature()) || sampling.temperature() < 0) {
    return Invalid(
        absl::StrCat("sampling.temperature must be finite and >= 0, got ", sampling.temperature()));
  }
  if (sampling.top_k() < 0) {
    return Invalid(absl::StrCat("sampling.top_k must be >= 0, got ", sampling.top_k()));
  }
  if (sampling.has_top_p() && !(sampling.top_p() > 0 && sampling.top_p() <= 1)) {
    return Invalid(absl::StrCat("sampling.top_p must be in (0, 1], got ", sampling.top_p()));
  }
  if (request.stop_sequences_size() > limits.max_stop_sequences) {
    return Invalid(absl::StrCat("at most ", limits.max_stop_sequences,
                                " stop_sequences are allowed, got ",
                                request.stop_sequences_size()));
  }
  for (int i = 0; i < request.stop_sequences_size(); ++i) {
    const std::string& stop = request.stop_sequences(i);
    if (stop.empty()) return Invalid(absl::StrCat("stop_sequences[", i, "] is empty"));
    if (stop.size() > limits.max_stop_sequence_bytes) {
      return Invalid(absl::StrCat("stop_sequences[", i, "] is ", stop.size(),
                                  " bytes, more than the limit of ",
                                  limits.max_stop_sequence_bytes));
    }
  }
  if (request.stop_sequences_size() > 0 && !has_tokenizer) {
    return Invalid("stop_sequences need a tokenizer on the gateway, and it has none");
  }
  return absl::OkStatus();
}

absl::StatusOr<GenerationRequest> PrepareGenerateRequest(const v1::GenerateRequest& request,
                                                         const v1::ModelInfo& model,
                                                         const Tokenizer* tokenizer,
                                                         const GatewayLimits& limits,
                                                         uint64_t seed) {
  GenerationRequest out;
  if (request.prompt_case() == v1::GenerateRequest::kText) {
    if (tokenizer == nullptr) {
      return Invalid("this gateway has no tokenizer: send the prompt as token_ids");
    }
    // User text: special-token markup is encoded as plain text.
    ASSIGN_OR_RETURN(out.prompt,
                     tokenizer->Encode(request.text(), {.add_special_tokens = false,
                                                        .parse_special_tokens = false}));
    if (out.prompt.empty()) return Invalid("prompt text encodes to no tokens");
  } else {
    out.prompt.assign(request.token_ids().ids().begin(), request.token_ids().ids().end());
  }
  out.max_new_tokens =
      request.has_max_new_tokens() ? request.max_new_tokens() : limits.default_max_new_tokens;
  const v1::SamplingParams& sampling = request.sampling();
  out.sampling.temperature = sampling.temperature();
  out.sampling.top_k = sampling.top_k();
  out.sampling.top_p = sampling.has_top_p() ? sampling.top_p() : 1.0f;
  out.sampling.seed = sampling.has_seed() ? sampling.seed() : seed;
  out.stop_at_eos = !request.ignore_eos();
  out.return_logprobs = request.logprobs();
  // The engine's own checks (vocabulary of tokenized text, total length).
  RETURN_IF_ERROR(ValidateRequest(out, ConfigForValidation(model)));
  return out;
}

}  // namespace blockserve::services
