#include "shared/tokenizer/utf8.h"

namespace blockserve::tokenizer {
namespace {

// Bounds of the second byte for each lead byte (Unicode Table 3-7); every
// later continuation byte is 0x80..0xBF.
struct SecondByteRange {
  unsigned char low;
  unsigned char high;
};

SecondByteRange SecondByteBounds(unsigned char lead) {
  if (lead == 0xE0) return {0xA0, 0xBF};
  if (lead == 0xED) return {0x80, 0x9F};
  if (lead == 0xF0) return {0x90, 0xBF};
  if (lead == 0xF4) return {0x80, 0x8F};
  return {0x80, 0xBF};
}

}  // namespace

int Utf8SequenceLength(unsigned char byte) {
  if (byte < 0x80) return 1;
  if (byte >= 0xC2 && byte <= 0xDF) return 2;
  if (byte >= 0xE0 && byte <= 0xEF) return 3;
  if (byte >= 0xF0 && byte <= 0xF4) return 4;
  return 0;
}

Utf8PrefixStep DecodeUtf8Prefix(absl::string_view text, size_t pos) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char lead = bytes[pos];
  if (lead < 0x80) return {{lead, 1, true}, false};
  const int length = Utf8SequenceLength(lead);
  if (length == 0) return {{kReplacementCharacter, 1, false}, false};
  char32_t code_point = lead & (0xFF >> (length + 1));
  const size_t available = text.size() - pos;
  for (int i = 1; i < length; ++i) {
    if (static_cast<size_t>(i) >= available) {
      // A valid prefix cut short by the end of the text.
      return {{kReplacementCharacter, i, false}, true};
    }
    const unsigned char byte = bytes[pos + i];
    const SecondByteRange range =
        i == 1 ? SecondByteBounds(lead) : SecondByteRange{0x80, 0xBF};
    if (byte < range.low || byte > range.high) {
      return {{kReplacementCharacter, i, false}, false};
    }
    code_point = (code_point << 6) | (byte & 0x3F);
  }
  return {{code_point, length, true}, false};
}

Utf8Step DecodeUtf8(absl::string_view text, size_t pos) {
  return DecodeUtf8Prefix(text, pos).step;
}

bool IsValidUtf8(absl::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  size_t pos = 0;
  const size_t size = text.size();
  while (pos < size) {
    // Eight ASCII bytes at a time: the common case for English text.
    while (pos + 8 <= size) {
      uint64_t word;
      __builtin_memcpy(&word, bytes + pos, 8);
      if (word & 0x8080808080808080ULL) break;
      pos += 8;
    }
    if (pos >= size) break;
    if (bytes[pos] < 0x80) {
      ++pos;
      continue;
    }
    const Utf8Step step = DecodeUtf8(text, pos);
    if (!step.valid) return false;
    pos += step.length;
  }
  return true;
}

void AppendUtf8Lossy(absl::string_view text, std::string* out) {
  size_t pos = 0;
  size_t clean_start = 0;  // start of the run of valid bytes not yet copied
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Utf8Step step = DecodeUtf8(text, pos);
    if (step.valid) {
      pos += step.length;
      continue;
    }
    out->append(text.data() + clean_start, pos - clean_start);
    out->append(kReplacementUtf8.data(), kReplacementUtf8.size());
    pos += step.length;
    clean_start = pos;
  }
  out->append(text.data() + clean_start, text.size() - clean_start);
}

void AppendUtf8(char32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

}  // namespace blockserve::tokenizer
