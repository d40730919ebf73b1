#include "services/common/proto_convert.h"

namespace blockserve::services {

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kEos:
      return v1::FINISH_REASON_EOS;
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kNone:
    case FinishReason::kError:
      return v1::FINISH_REASON_UNSPECIFIED;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

FinishReason FromProto(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH:
      return FinishReason::kLength;
    case v1::FINISH_REASON_EOS:
      return FinishReason::kEos;
    case v1::FINISH_REASON_STOP:
      return FinishReason::kStop;
    case v1::FINISH_REASON_CANCELLED:
      return FinishReason::kCancelled;
    default:
      return FinishReason::kNone;
  }
}

void ToProto(const SamplingParams& sampling, v1::ResolvedSampling* out) {
  out->set_temperature(sampling.temperature);
  out->set_top_k(sampling.top_k);
  out->set_top_p(sampling.top_p);
  out->set_seed(sampling.seed);
}

SamplingParams FromProto(const v1::ResolvedSampling& sampling) {
  return {.temperature = sampling.temperature(),
          .top_k = sampling.top_k(),
          .top_p = sampling.top_p(),
          .seed = sampling.seed()};
}

void ToProto(const BlockJob& job, v1::DecodeBlock* out) {
  out->set_session_id(job.session_id);
  out->set_block_index(job.block_index);
  out->mutable_context()->Assign(job.context.begin(), job.context.end());
  out->set_first_position(job.first_position);
  out->set_num_tokens(job.num_tokens);
  ToProto(job.sampling, out->mutable_sampling());
  out->set_stop_at_eos(job.stop_at_eos);
  out->set_eos_token_id(job.eos_token_id);
  out->set_return_logprobs(job.return_logprobs);
}

BlockJob FromProto(const v1::DecodeBlock& block) {
  BlockJob job;
  job.session_id = block.session_id();
  job.block_index = block.block_index();
  job.context.assign(block.context().begin(), block.context().end());
  job.first_position = block.first_position();
  job.num_tokens = block.num_tokens();
  job.sampling = FromProto(block.sampling());
  job.stop_at_eos = block.stop_at_eos();
  job.eos_token_id = block.eos_token_id();
  job.return_logprobs = block.return_logprobs();
  return job;
}

void ToProto(const BlockResult& result, v1::DecodedBlock* out) {
  out->set_session_id(result.session_id);
  out->set_block_index(result.block_index);
  out->mutable_tokens()->Assign(result.tokens.begin(), result.tokens.end());
  out->mutable_logprobs()->Assign(result.logprobs.begin(), result.logprobs.end());
  out->set_status_code(static_cast<int32_t>(result.status.code()));
  out->set_status_message(std::string(result.status.message()));
}

BlockResult FromProto(const v1::DecodedBlock& block) {
  BlockResult result;
  result.session_id = block.session_id();
  result.block_index = block.block_index();
  result.tokens.assign(block.tokens().begin(), block.tokens().end());
  result.logprobs.assign(block.logprobs().begin(), block.logprobs().end());
  const int code = block.status_code();
  if (code != 0) {
    const absl::StatusCode status_code =
        code > 0 && code <= 16 ? static_cast<absl::StatusCode>(code) : absl::StatusCode::kUnknown;
    result.status = absl::Status(status_code, block.status_message());
  }
  return result;
}

void ToProto(const GenerationRequest& request, v1::ContextGenerateRequest* out) {
  out->mutable_prompt()->Assign(request.prompt.begin(), request.prompt.end());
  out->set_max_new_tokens(request.max_new_tokens);
  ToProto(request.sampling, out->mutable_sampling());
  out->set_stop_at_eos(request.stop_at_eos);
  out->set_return_logprobs(request.return_logprobs);
}

GenerationRequest FromProto(const v1::ContextGenerateRequest& request) {
  GenerationRequest out;
  out.prompt.assign(request.prompt().begin(), request.prompt().end());
  out.max_new_tokens = request.max_new_tokens();
  out.sampling = FromProto(request.sampling());
  out.stop_at_eos = request.stop_at_eos();
  out.return_logprobs = request.return_logprobs();
  return out;
}

void ToProto(const ModelConfig& config, const std::string& name, v1::ModelInfo* out) {
  out->set_name(name);
  out->set_kind(std::string(ModelKindName(config.kind)));
  out->set_vocab_size(config.vocab_size);
  out->set_eos_token_id(config.eos_token_id);
  out->set_block_length(config.block_length);
  out->set_context_size(config.block_decoder.hidden_size);
  out->set_max_sequence_length(config.max_sequence_length);
  out->set_expansion_ratio(config.expansion_ratio);
}

ModelConfig ConfigForValidation(const v1::ModelInfo& info) {
  ModelConfig config;
  config.kind = ModelKind::kBlock;
  config.vocab_size = info.vocab_size();
  config.eos_token_id = info.eos_token_id();
  config.block_length = info.block_length();
  config.expansion_ratio = info.expansion_ratio();
  config.block_decoder.hidden_size = info.context_size();
  config.max_sequence_length = info.max_sequence_length();
  return config;
}

}  // namespace blockserve::services
