#include "shared/tokenizer/split_pattern.h"

#include "shared/tokenizer/char_class.h"

namespace blockserve::tokenizer {

const absl::string_view kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const absl::string_view kCl100kSplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const absl::string_view kQwen2SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

// One decoded character of well-formed UTF-8.
struct Char {
  char32_t code_point;
  int length;
};

inline Char CharAt(absl::string_view text, size_t pos) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char lead = bytes[pos];
  if (lead < 0x80) return {lead, 1};
  if (lead < 0xE0) {
    return {
        static_cast<char32_t>(((lead & 0x1F) << 6) | (bytes[pos + 1] & 0x3F)),
        2};
  }
  if (lead < 0xF0) {
    return {static_cast<char32_t>(((lead & 0x0F) << 12) |
                                  ((bytes[pos + 1] & 0x3F) << 6) |
                                  (bytes[pos + 2] & 0x3F)),
            3};
  }
  return {static_cast<char32_t>(
              ((lead & 0x07) << 18) | ((bytes[pos + 1] & 0x3F) << 12) |
              ((bytes[pos + 2] & 0x3F) << 6) | (bytes[pos + 3] & 0x3F)),
          4};
}

// The class of each ASCII character (the common case, without decoding).
struct AsciiClasses {
  CharClass of[128];
  AsciiClasses() {
    for (char32_t c = 0; c < 128; ++c) of[c] = ClassifyChar(c);
  }
};
const AsciiClasses& Ascii() {
  static const AsciiClasses* const classes = new AsciiClasses();
  return *classes;
}

// The end of the run of characters of class `cls` that starts at `pos`.
inline size_t RunEnd(absl::string_view text, size_t pos, CharClass cls) {
  const size_t size = text.size();
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const AsciiClasses& ascii = Ascii();
  while (pos < size && bytes[pos] < 0x80 && ascii.of[bytes[pos]] == cls) ++pos;
  while (pos < size) {
    const Char c = CharAt(text, pos);
    if (ClassifyChar(c.code_point) != cls) break;
    pos += c.length;
  }
  return pos;
}

// Like RunEnd but stops after at most `max_count` characters.
inline size_t BoundedRunEnd(absl::string_view text, size_t pos, CharClass cls,
                            int max_count) {
  const size_t size = text.size();
  for (int count = 0; count < max_count && pos < size; ++count) {
    const Char c = CharAt(text, pos);
    if (ClassifyChar(c.code_point) != cls) break;
    pos += c.length;
  }
  return pos;
}

// Whitespace run starting at `pos` (a whitespace character): its end and the
// start of its last character.
struct WhitespaceRun {
  size_t end;
  size_t last_start;
};

inline WhitespaceRun ScanWhitespace(absl::string_view text, size_t pos) {
  WhitespaceRun run{pos, pos};
  const size_t size = text.size();
  while (run.end < size) {
    const Char c = CharAt(text, run.end);
    if (ClassifyChar(c.code_point) != CharClass::kWhitespace) break;
    run.last_start = run.end;
    run.end += c.length;
  }
  return run;
}

// `\s+(?!\S)|\s+` on a whitespace run starting at `pos`: the greedy run when
// it reaches the end of the text; otherwise the run less its last character
// (so that character can lead the next word), unless that leaves nothing.
inline size_t WhitespaceMatch(absl::string_view text, size_t pos,
                              const WhitespaceRun& run) {
  if (run.end == text.size()) return run.end;
  if (run.last_start > pos) return run.last_start;
  return run.end;
}

size_t MatchGpt2(absl::string_view text, size_t pos) {
  const size_t size = text.size();
  const Char c = CharAt(text, pos);
  // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive).
  if (c.code_point == '\'' && pos + 1 < size) {
    const char a = text[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
    if (pos + 2 < size) {
      const char b = text[pos + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
          (a == 'l' && b == 'l')) {
        return pos + 3;
      }
    }
  }
  //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+ with the optional space.
  if (c.code_point == ' ' && pos + 1 < size) {
    const Char next = CharAt(text, pos + 1);
    const CharClass next_class = ClassifyChar(next.code_point);
    if (next_class != CharClass::kWhitespace) {
      return RunEnd(text, pos + 1 + next.length, next_class);
    }
  }
  const CharClass cls = ClassifyChar(c.code_point);
  if (cls != CharClass::kWhitespace) return RunEnd(text, pos + c.length, cls);
  return WhitespaceMatch(text, pos, ScanWhitespace(text, pos));
}

inline bool IsLineBreak(char32_t code_point) {
  return code_point == '\r' || code_point == '\n';
}

// Lower-cases the letters that the contraction alternatives mention, the way
// a case-insensitive Oniguruma match folds them (U+017F LONG S folds to s).
inline char32_t FoldContractionLetter(char32_t code_point) {
  if (code_point >= 'A' && code_point <= 'Z') return code_point + ('a' - 'A');
  if (code_point == 0x017F) return 's';
  return code_point;
}

size_t MatchCl100k(absl::string_view text, size_t pos, int max_digits) {
  const size_t size = text.size();
  const Char c = CharAt(text, pos);
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  if (c.code_point == '\'' && pos + 1 < size) {
    const Char a = CharAt(text, pos + 1);
    const char32_t fa = FoldContractionLetter(a.code_point);
    if (fa == 's' || fa == 't' || fa == 'm' || fa == 'd') {
      return pos + 1 + a.length;
    }
    if (pos + 1 + a.length < size) {
      const Char b = CharAt(text, pos + 1 + a.length);
      const char32_t fb = FoldContractionLetter(b.code_point);
      if ((fa == 'r' && fb == 'e') || (fa == 'v' && fb == 'e') ||
          (fa == 'l' && fb == 'l')) {
        return pos + 1 + a.length + b.length;
      }
    }
  }
  const CharClass cls = ClassifyChar(c.code_point);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (cls == CharClass::kLetter) {
    return RunEnd(text, pos + c.length, CharClass::kLetter);
  }
  if (cls != CharClass::kNumber && !IsLineBreak(c.code_point) &&
      pos + c.length < size) {
    const Char next = CharAt(text, pos + c.length);
    if (ClassifyChar(next.code_point) == CharClass::kLetter) {
      return RunEnd(text, pos + c.length + next.length, CharClass::kLetter);
    }
  }
  // \p{N}{1,3} (or \p{N})
  if (cls == CharClass::kNumber) {
    return BoundedRunEnd(text, pos, CharClass::kNumber, max_digits);
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t others_start = std::string::npos;
  if (c.code_point == ' ' && pos + 1 < size) {
    const Char next = CharAt(text, pos + 1);
    if (ClassifyChar(next.code_point) == CharClass::kOther) {
      others_start = pos + 1;
    }
  }
  if (others_start == std::string::npos && cls == CharClass::kOther) {
    others_start = pos;
  }
  if (others_start != std::string::npos) {
    size_t end = RunEnd(text, others_start, CharClass::kOther);
    while (end < size && (text[end] == '\r' || text[end] == '\n')) ++end;
    return end;
  }
  // Whitespace from here on.
  const WhitespaceRun run = ScanWhitespace(text, pos);
  // \s*[\r\n]+ : up to and including the run's last line break.
  for (size_t i = run.end; i > pos; --i) {
    if (text[i - 1] == '\r' || text[i - 1] == '\n') return i;
  }
  return WhitespaceMatch(text, pos, run);
}

}  // namespace

std::optional<SplitPattern> SplitPattern::FromRegex(absl::string_view regex) {
  if (regex == kGpt2SplitRegex) return SplitPattern(Kind::kGpt2);
  if (regex == kCl100kSplitRegex) return SplitPattern(Kind::kCl100k);
  if (regex == kQwen2SplitRegex) return SplitPattern(Kind::kQwen2);
  return std::nullopt;
}

size_t SplitPattern::MatchAt(absl::string_view text, size_t pos) const {
  switch (kind_) {
    case Kind::kGpt2:
      return MatchGpt2(text, pos);
    case Kind::kCl100k:
      return MatchCl100k(text, pos, 3);
    case Kind::kQwen2:
      return MatchCl100k(text, pos, 1);
  }
  return text.size();
}

void SplitPattern::Split(
    absl::string_view text,
    absl::FunctionRef<void(absl::string_view)> emit) const {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = MatchAt(text, pos);
    emit(text.substr(pos, end - pos));
    pos = end;
  }
}

absl::string_view SplitPattern::name() const {
  switch (kind_) {
    case Kind::kGpt2:
      return "gpt2";
    case Kind::kCl100k:
      return "cl100k";
    case Kind::kQwen2:
      return "qwen2";
  }
  return "unknown";
}

}  // namespace blockserve::tokenizer
