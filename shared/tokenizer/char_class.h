// Unicode character classes used by the pre-tokenizer split patterns:
// letters (\p{L}), numbers (\p{N}) and white space (\s), with the same
// meaning as in the Oniguruma regular expressions that Hugging Face
// `tokenizers` runs (\s = U+0009..U+000D, U+0085 and the Zs, Zl, Zp
// categories, i.e. the White_Space property). General categories come from
// utf8proc (Unicode 15 in Debian 12).
//
// A 64K-entry table for the Basic Multilingual Plane is built once on first
// use (thread-safe static initialisation); other planes ask utf8proc.
// Thread-safe.
#ifndef BLOCKSERVE_SHARED_TOKENIZER_CHAR_CLASS_H_
#define BLOCKSERVE_SHARED_TOKENIZER_CHAR_CLASS_H_

#include <cstdint>

namespace blockserve::tokenizer {

enum class CharClass : uint8_t {
  kLetter = 0,      // \p{L}: Lu Ll Lt Lm Lo
  kNumber = 1,      // \p{N}: Nd Nl No
  kWhitespace = 2,  // \s
  kOther = 3,       // everything else
};

namespace char_class_internal {
const CharClass* BmpTable();
CharClass ClassifySlow(char32_t code_point);
}  // namespace char_class_internal

inline CharClass ClassifyChar(char32_t code_point) {
  static const CharClass* const table = char_class_internal::BmpTable();
  if (code_point < 0x10000) return table[code_point];
  return char_class_internal::ClassifySlow(code_point);
}

}  // namespace blockserve::tokenizer

#endif  // BLOCKSERVE_SHARED_TOKENIZER_CHAR_CLASS_H_
