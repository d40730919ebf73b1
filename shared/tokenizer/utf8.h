// UTF-8 decoding, validation and lossy repair for the tokenizer.
//
// The tokenizer works on UTF-8 byte strings. Text from clients may be
// malformed; every function here treats malformed input the same way Rust's
// String::from_utf8_lossy does (the Unicode Standard's "substitution of
// maximal subparts", chapter 3.9): each maximal prefix of a would-be valid
// sequence that cannot be completed is replaced by one U+FFFD, and a byte that
// cannot start any sequence (0x80..0xBF alone, 0xC0, 0xC1, 0xF5..0xFF) by one
// U+FFFD. Surrogates (ED A0..ED BF ..) and overlong forms are malformed.
//
// Stateless free functions; thread-safe.
#ifndef BLOCKSERVE_SHARED_TOKENIZER_UTF8_H_
#define BLOCKSERVE_SHARED_TOKENIZER_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace blockserve::tokenizer {

inline constexpr char32_t kReplacementCharacter = 0xFFFD;
inline constexpr absl::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// The result of decoding at one position.
struct Utf8Step {
  // The code point, or kReplacementCharacter when `valid` is false.
  char32_t code_point;
  // Bytes consumed: the whole sequence when valid; the maximal subpart (at
  // least 1) when not.
  int length;
  bool valid;
};

// Decodes the sequence starting at text[pos]; pos < text.size().
Utf8Step DecodeUtf8(absl::string_view text, size_t pos);

// Like DecodeUtf8 but tells apart a sequence that is merely cut short by the
// end of `text` (a valid prefix that more bytes could complete): then
// `incomplete` is true and nothing is consumed.
struct Utf8PrefixStep {
  Utf8Step step;
  bool incomplete;
};
Utf8PrefixStep DecodeUtf8Prefix(absl::string_view text, size_t pos);

// True when the whole of `text` is well-formed UTF-8.
bool IsValidUtf8(absl::string_view text);

// Appends `text` to `out` with every malformed part replaced as described
// above.
void AppendUtf8Lossy(absl::string_view text, std::string* out);

// Appends the UTF-8 encoding of `code_point` (must be a scalar value).
void AppendUtf8(char32_t code_point, std::string* out);

// Length in bytes of the sequence that the lead byte `byte` announces
// (1 for ASCII, 2..4 for lead bytes, 0 for a byte that cannot lead).
int Utf8SequenceLength(unsigned char byte);

}  // namespace blockserve::tokenizer

#endif  // BLOCKSERVE_SHARED_TOKENIZER_UTF8_H_
