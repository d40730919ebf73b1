#include "shared/tokenizer/char_class.h"

#include <utf8proc.h>

namespace blockserve::tokenizer::char_class_internal {

CharClass ClassifySlow(char32_t code_point) {
  if ((code_point >= 0x09 && code_point <= 0x0D) || code_point == 0x85) {
    return CharClass::kWhitespace;
  }
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(code_point))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return CharClass::kLetter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return CharClass::kNumber;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
      return CharClass::kWhitespace;
    default:
      return CharClass::kOther;
  }
}

const CharClass* BmpTable() {
  // Built once; never freed (lives as long as the process).
  auto* table = new CharClass[0x10000];
  for (char32_t code_point = 0; code_point < 0x10000; ++code_point) {
    table[code_point] = ClassifySlow(code_point);
  }
  return table;
}

}  // namespace blockserve::tokenizer::char_class_internal
