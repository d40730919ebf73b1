// Hand-written matchers for the regular expressions that byte-level BPE
// tokenizers split text with before BPE. Each matcher reproduces, match for
// match, what the backtracking (Oniguruma) regex engine of Hugging Face
// `tokenizers` finds for that exact pattern, with real Unicode classes
// (see char_class.h). Patterns:
//
//   kGpt2    the ByteLevel pre-tokenizer's built-in pattern (kGpt2SplitRegex
//            below); its contractions 's 't 're 've 'm 'll 'd are
//            case-sensitive
//   kCl100k  the Llama 3 / OpenAI cl100k pattern (kCl100kSplitRegex):
//            case-insensitive contractions, a non-letter may lead a word,
//            numbers in groups of up to three, line breaks kept together
//   kQwen2   the same with \p{N} in place of \p{N}{1,3} (kQwen2SplitRegex)
//
// Every one of these patterns matches at least one character at any
// position, so splitting is a sequence of MatchAt calls with no gaps.
// Input must be well-formed UTF-8 (the tokenizer repairs text first).
// Immutable after construction; thread-safe.
#ifndef BLOCKSERVE_SHARED_TOKENIZER_SPLIT_PATTERN_H_
#define BLOCKSERVE_SHARED_TOKENIZER_SPLIT_PATTERN_H_

#include <cstddef>
#include <optional>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace blockserve::tokenizer {

class SplitPattern {
 public:
  enum class Kind { kGpt2, kCl100k, kQwen2 };

  explicit SplitPattern(Kind kind) : kind_(kind) {}

  // The pattern whose regex source is exactly `regex` (as written in
  // tokenizer.json), or nullopt when it is not one of the supported ones.
  static std::optional<SplitPattern> FromRegex(absl::string_view regex);

  // The end of the match that starts at `pos` (pos < text.size()); always
  // greater than `pos`.
  size_t MatchAt(absl::string_view text, size_t pos) const;

  // Calls `emit` with each consecutive match of `text`, in order.
  void Split(absl::string_view text, absl::FunctionRef<void(absl::string_view)> emit) const;

  Kind kind() const { return kind_; }
  absl::string_view name() const;

 private:
  Kind kind_;
};

// The regex sources, as tokenizer.json files spell them.
extern const absl::string_view kGpt2SplitRegex;
extern const absl::string_view kCl100kSplitRegex;
extern const absl::string_view kQwen2SplitRegex;

}  // namespace blockserve::tokenizer

#endif  // BLOCKSERVE_SHARED_TOKENIZER_SPLIT_PATTERN_H_
