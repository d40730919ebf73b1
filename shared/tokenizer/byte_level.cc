#include "shared/tokenizer/byte_level.h"

#include <array>

#include "shared/tokenizer/utf8.h"

namespace blockserve::tokenizer {
namespace {

bool IsPrintableSelf(int byte) {
  return (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

struct Tables {
  std::array<char32_t, 256> byte_to_char;
  // Indexed by code point; the alphabet lies below U+0144.
  std::array<int, 0x144> char_to_byte;
};

const Tables& GetTables() {
  static const Tables tables = [] {
    Tables t;
    t.char_to_byte.fill(-1);
    int next_shifted = 0;
    for (int byte = 0; byte < 256; ++byte) {
      const char32_t c = IsPrintableSelf(byte)
                             ? static_cast<char32_t>(byte)
                             : static_cast<char32_t>(256 + next_shifted++);
      t.byte_to_char[byte] = c;
      t.char_to_byte[c] = byte;
    }
    return t;
  }();
  return tables;
}

}  // namespace

char32_t ByteToChar(unsigned char byte) {
  return GetTables().byte_to_char[byte];
}

std::optional<unsigned char> CharToByte(char32_t code_point) {
  const Tables& tables = GetTables();
  if (code_point >= tables.char_to_byte.size()) return std::nullopt;
  const int byte = tables.char_to_byte[code_point];
  if (byte < 0) return std::nullopt;
  return static_cast<unsigned char>(byte);
}

std::string BytesToByteLevel(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char byte : bytes) {
    AppendUtf8(ByteToChar(static_cast<unsigned char>(byte)), &out);
  }
  return out;
}

std::optional<std::string> ByteLevelToBytes(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const Utf8Step step = DecodeUtf8(text, pos);
    if (!step.valid) return std::nullopt;
    const std::optional<unsigned char> byte = CharToByte(step.code_point);
    if (!byte.has_value()) return std::nullopt;
    out.push_back(static_cast<char>(*byte));
    pos += step.length;
  }
  return out;
}

}  // namespace blockserve::tokenizer
