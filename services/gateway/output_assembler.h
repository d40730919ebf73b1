// OutputAssembler: turns the token ids a generation produces, block by
// block, into what the client receives: token ids, log-probabilities and
// UTF-8-safe text pieces, with stop sequences matched on the decoded text.
//
// Tokens are processed one at a time through a StreamingDetokenizer and a
// StopMatcher. When a stop sequence matches, the output ends with the token
// that completed it (later tokens of the block are dropped) and the text
// ends before the match. Ids the tokenizer does not know (a model
// vocabulary padded beyond the tokenizer's) contribute no text. Without a
// tokenizer there is no text and stop sequences are not allowed.
//
// Not thread-safe; one per request. The tokenizer must outlive it.
#ifndef BLOCKSERVE_SERVICES_GATEWAY_OUTPUT_ASSEMBLER_H_
#define BLOCKSERVE_SERVICES_GATEWAY_OUTPUT_ASSEMBLER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "services/gateway/stop_matcher.h"
#include "shared/tokenizer/streaming_detokenizer.h"
#include "shared/tokenizer/tokenizer.h"

namespace blockserve::services {

class OutputAssembler {
 public:
  // `tokenizer` may be null (no text).
  OutputAssembler(const Tokenizer* tokenizer, std::vector<std::string> stop_sequences,
                  bool keep_special_tokens);

  struct Delta {
    std::vector<int32_t> tokens;
    std::vector<float> logprobs;
    std::string text;
    bool stopped = false;       // a stop sequence matched: the output is complete
    std::string stop_sequence;  // which one
  };

  // `logprobs` is empty or one per token.
  Delta Append(absl::Span<const int32_t> tokens, absl::Span<const float> logprobs);
  // The text still held back, at the end of a generation that did not stop
  // on a stop sequence.
  std::string Finish();

  int generated_tokens() const { return generated_; }
  bool stopped() const { return stopped_; }

 private:
  const Tokenizer* tokenizer_;
  std::optional<StreamingDetokenizer> detokenizer_;
  StopMatcher matcher_;
  int generated_ = 0;
  bool stopped_ = false;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_GATEWAY_OUTPUT_ASSEMBLER_H_
