#include "services/gateway/output_assembler.h"

namespace blockserve::services {

OutputAssembler::OutputAssembler(const Tokenizer* tokenizer,
                                 std::vector<std::string> stop_sequences, bool keep_special_tokens)
    : tokenizer_(tokenizer), matcher_(std::move(stop_sequences)) {
  if (tokenizer_ != nullptr) {
    detokenizer_.emplace(*tokenizer_, /*skip_special_tokens=*/!keep_special_tokens);
  }
}

OutputAssembler::Delta OutputAssembler::Append(absl::Span<const int32_t> tokens,
                                               absl::Span<const float> logprobs) {
  Delta delta;
  if (stopped_) return delta;
  for (size_t i = 0; i < tokens.size(); ++i) {
    delta.tokens.push_back(tokens[i]);
    if (i < logprobs.size()) delta.logprobs.push_back(logprobs[i]);
    ++generated_;
    if (!detokenizer_) continue;
    absl::StatusOr<std::string> piece = detokenizer_->Push(tokens[i]);
    if (!piece.ok()) continue;  // an id beyond the tokenizer: no text
    StopMatcher::Result result = matcher_.Push(*piece);
    delta.text += result.text;
    if (result.matched) {
      delta.stopped = true;
      delta.stop_sequence = matcher_.sequence(result.which);
      stopped_ = true;
      break;
    }
  }
  return delta;
}

std::string OutputAssembler::Finish() {
  if (!detokenizer_ || stopped_) return "";
  // A pending partial character becomes U+FFFD; it may complete a stop
  // sequence only in theory (stop sequences are valid UTF-8), so match once
  // more for exactness.
  StopMatcher::Result tail = matcher_.Push(detokenizer_->Finish());
  std::string text = tail.text;
  if (tail.matched) {
    stopped_ = true;
    return text;
  }
  return text + matcher_.Flush();
}

}  // namespace blockserve::services
