// Validation of public Generate requests, in two phases:
//
// CheckGenerateRequest() needs no tokenization and runs before admission,
// so a bad request never takes a slot; PrepareGenerateRequest() runs after
// admission: it tokenizes a text prompt, resolves defaults and the seed, and
// checks the length against the model. Both return INVALID_ARGUMENT with a
// message naming the field as the proto spells it.
//
// Pure functions; thread-safe (the tokenizer is).
#ifndef BLOCKSERVE_SERVICES_GATEWAY_REQUEST_VALIDATION_H_
#define BLOCKSERVE_SERVICES_GATEWAY_REQUEST_VALIDATION_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "blockserve/v1/common.pb.h"
#include "blockserve/v1/generation.pb.h"
#include "shared/engine/request.h"
#include "shared/tokenizer/tokenizer.h"

namespace blockserve::services {

struct GatewayLimits {
  int default_max_new_tokens = 64;
  int max_new_tokens_limit = 4096;
  size_t max_prompt_bytes = size_t{1} << 20;
  int max_stop_sequences = 16;
  size_t max_stop_sequence_bytes = 256;
};

absl::Status CheckGenerateRequest(const v1::GenerateRequest& request, const v1::ModelInfo& model,
                                  bool has_tokenizer, const GatewayLimits& limits);

// `seed` is used when the request has none. `tokenizer` may be null (then
// the prompt must be token ids).
absl::StatusOr<GenerationRequest> PrepareGenerateRequest(const v1::GenerateRequest& request,
                                                         const v1::ModelInfo& model,
                                                         const Tokenizer* tokenizer,
                                                         const GatewayLimits& limits,
                                                         uint64_t seed);

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_GATEWAY_REQUEST_VALIDATION_H_
