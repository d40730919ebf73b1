// The GPT-2 byte-level alphabet: each of the 256 byte values is shown as one
// printable Unicode character (printable Latin-1 bytes as themselves, the rest
// as U+0100 onwards, e.g. the space 0x20 as 'Ġ' U+0120), so that BPE
// vocabularies of byte strings can be stored as text. Byte-level vocabularies
// spell their tokens in this alphabet.
//
// Stateless functions over constant tables; thread-safe.
#ifndef BLOCKSERVE_SHARED_TOKENIZER_BYTE_LEVEL_H_
#define BLOCKSERVE_SHARED_TOKENIZER_BYTE_LEVEL_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace blockserve::tokenizer {

// The character that stands for `byte`.
char32_t ByteToChar(unsigned char byte);

// The byte that `code_point` stands for, or nullopt when it is not in the
// alphabet.
std::optional<unsigned char> CharToByte(char32_t code_point);

// `bytes` spelled in the alphabet (UTF-8).
std::string BytesToByteLevel(absl::string_view bytes);

// The bytes that a string in the alphabet spells, or nullopt when some
// character of `text` (well-formed UTF-8) is not in the alphabet.
std::optional<std::string> ByteLevelToBytes(absl::string_view text);

}  // namespace blockserve::tokenizer

#endif  // BLOCKSERVE_SHARED_TOKENIZER_BYTE_LEVEL_H_
