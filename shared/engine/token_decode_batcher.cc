#include "shared/engine/token_decode_batcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "shared/common/logging.h"
#include "shared/common/status_macros.h"

namespace blockserve {

absl::StatusOr<std::unique_ptr<TokenDecodeBatcher>> TokenDecodeBatcher::Create(
    const TokenDecoder& decoder, Backend& backend, const Options& options) {
  if (options.max_active_blocks < 1) {
    return absl::InvalidArgumentError("max_active_blocks must be at least 1");
  }
  ASSIGN_OR_RETURN(PagedKvCache cache,
                   PagedKvCache::Create(backend, decoder.stack_config(),
                                        decoder.max_block_entries(), options.max_active_blocks));
  return std::unique_ptr<TokenDecodeBatcher>(
      new TokenDecodeBatcher(decoder, backend, options, std::move(cache)));
}

absl::Status TokenDecodeBatcher::Submit(BlockJob job) {
  if (static_cast<int>(job.context.size()) != decoder_.context_size()) {
    return absl::InvalidArgumentError(absl::StrCat("context embedding has ", job.context.size(),
                                                   " values, the model needs ",
                                                   decoder_.context_size()));
  }
  if (job.num_tokens < 1 || job.num_tokens > decoder_.block_length()) {
    return absl::InvalidArgumentError(absl::StrCat("a block decodes 1 to ",
                                                   decoder_.block_length(), " tokens, not ",
                                                   job.num_tokens));
  }
  queue_.push_back(std::move(job));
  return absl::OkStatus();
}

void TokenDecodeBatcher::CancelSession(uint64_t session_id) {
  std::erase_if(queue_, [&](const BlockJob& job) { return job.session_id == session_id; });
  std::erase_if(active_, [&](std::unique_ptr<ActiveBlock>& block) {
    if (block->job.session_id != session_id) return false;
    cache_.Release(block->kv);
    return true;
  });
}

std::vector<BlockResult> TokenDecodeBatcher::Step() {
  absl::StatusOr<std::vector<BlockResult>> finished = RunStep();
  if (finished.ok()) return *std::move(finished);
  // Fail every block of the step; the batcher stays usable for new work.
  std::vector<BlockResult> failed;
  for (std::unique_ptr<ActiveBlock>& block : active_) {
    cache_.Release(block->kv);
    BlockResult result = std::move(block->result);
    result.status = finished.status();
    failed.push_back(std::move(result));
  }
  active_.clear();
  return failed;
}

absl::StatusOr<std::vector<BlockResult>> TokenDecodeBatcher::RunStep() {
  while (!queue_.empty() && static_cast<int>(active_.size()) < options_.max_active_blocks) {
    auto block = std::make_unique<ActiveBlock>();
    block->job = std::move(queue_.front());
    queue_.pop_front();
    block->result.session_id = block->job.session_id;
    block->result.block_index = block->job.block_index;
    CHECK_OK(cache_.Reserve(block->kv, decoder_.max_block_entries()));  // one page each
    active_.push_back(std::move(block));
  }
  last_step_batch_ = static_cast<int>(active_.size());
  if (active_.empty()) return std::vector<BlockResult>();

  // New blocks start from their context embedding; running ones feed back
  // their last token.
  const int64_t p = decoder_.context_size();
  std::vector<float> context_values;
  std::vector<TokenDecoder::Input> inputs;
  std::vector<SamplingRow> sampling;
  inputs.reserve(active_.size());
  int32_t num_contexts = 0;
  for (std::unique_ptr<ActiveBlock>& block : active_) {
    TokenDecoder::Input input;
    input.kv = &block->kv;
    if (!block->started) {
      context_values.insert(context_values.end(), block->job.context.begin(),
                            block->job.context.end());
      input.context_row = num_contexts++;
    } else {
      input.tokens = absl::MakeConstSpan(&block->result.tokens.back(), 1);
    }
    input.output = OutputRows::kLast;
    inputs.push_back(input);
    const int64_t position =
        block->job.first_position + static_cast<int64_t>(block->result.tokens.size());
    sampling.push_back(block->job.sampling.Row(position));
  }
  Tensor contexts;
  if (num_contexts > 0) {
    ASSIGN_OR_RETURN(contexts, backend_.Empty(DType::kF32, {num_contexts, p}));
    backend_.CopyToDevice(context_values.data(), contexts);
  }
  ASSIGN_OR_RETURN(Tensor logits, decoder_.Forward(backend_, cache_, contexts, inputs));
  const int64_t n = static_cast<int64_t>(active_.size());
  ASSIGN_OR_RETURN(Tensor tokens, backend_.Empty(DType::kI32, {n}));
  ASSIGN_OR_RETURN(Tensor logprobs, backend_.Empty(DType::kF32, {n}));
  backend_.Sample(logits, sampling, tokens, logprobs);
  std::vector<int32_t> host_tokens(n);
  std::vector<float> host_logprobs(n);
  backend_.CopyToHost(tokens, host_tokens.data());
  backend_.CopyToHost(logprobs, host_logprobs.data());
  RETURN_IF_ERROR(backend_.Synchronize());

  std::vector<BlockResult> finished;
  std::vector<std::unique_ptr<ActiveBlock>> still_active;
  for (int64_t i = 0; i < n; ++i) {
    ActiveBlock& block = *active_[i];
    block.started = true;
    block.result.tokens.push_back(host_tokens[i]);
    if (block.job.return_logprobs) block.result.logprobs.push_back(host_logprobs[i]);
    const bool eos = block.job.stop_at_eos && host_tokens[i] == block.job.eos_token_id;
    if (eos || static_cast<int>(block.result.tokens.size()) == block.job.num_tokens) {
      cache_.Release(block.kv);
      finished.push_back(std::move(block.result));
    } else {
      still_active.push_back(std::move(active_[i]));
    }
  }
  active_ = std::move(still_active);
  return finished;
}

}  // namespace blockserve
