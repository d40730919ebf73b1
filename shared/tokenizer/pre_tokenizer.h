// The tokenizer.json "pre_tokenizer" of a byte-level BPE tokenizer: cuts a
// (normalized) piece of text into the words that BPE encodes one by one.
//
// Supported, as Hugging Face `tokenizers` runs them:
// - ByteLevel {add_prefix_space, use_regex}: a space is put before each piece
//   that does not start with one (when add_prefix_space), then the piece is
//   split with the GPT-2 pattern (when use_regex, the default). The byte-level
//   character mapping itself is done by the BPE model on raw bytes.
// - Split {pattern: {"Regex": R}, behavior: "Isolated", invert: false} for
//   the regexes that split_pattern.h implements (GPT-2, cl100k/Llama 3,
//   Qwen2).
// - Digits {individual_digits}: runs of \p{N} (or each one) become words.
// - Sequence of those, with ByteLevel last (so that words reach BPE as
//   byte-level text).
// Anything else is rejected by FromJson with a message naming it.
//
// Immutable after construction; thread-safe.
#ifndef BLOCKSERVE_SHARED_TOKENIZER_PRE_TOKENIZER_H_
#define BLOCKSERVE_SHARED_TOKENIZER_PRE_TOKENIZER_H_

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "shared/tokenizer/split_pattern.h"

namespace blockserve::tokenizer {

class PreTokenizer {
 public:
  static absl::StatusOr<PreTokenizer> FromJson(const nlohmann::json& config);

  // Calls `emit` with each word of `piece` (well-formed UTF-8), in order.
  void Run(absl::string_view piece,
           absl::FunctionRef<void(absl::string_view)> emit) const;

  // "ByteLevel(gpt2)", "Sequence[Split(cl100k), ByteLevel]": for messages.
  std::string Describe() const;

 private:
  struct Step {
    enum class Type { kSplit, kDigits, kByteLevel } type;
    SplitPattern pattern{SplitPattern::Kind::kGpt2};
    bool individual_digits = false;  // kDigits
    bool add_prefix_space = false;   // kByteLevel
    bool use_regex = true;           // kByteLevel
  };

  void RunFrom(size_t step, absl::string_view piece,
               absl::FunctionRef<void(absl::string_view)> emit) const;

  std::vector<Step> steps_;
};

}  // namespace blockserve::tokenizer

#endif  // BLOCKSERVE_SHARED_TOKENIZER_PRE_TOKENIZER_H_
