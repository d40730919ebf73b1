#include "shared/tokenizer/added_tokens.h"

#include <unicode/uchar.h>

#include <algorithm>

#include "shared/tokenizer/char_class.h"
#include "shared/tokenizer/utf8.h"

namespace blockserve::tokenizer {
namespace {

uint64_t EdgeKey(int32_t node, unsigned char byte) {
  return (static_cast<uint64_t>(node) << 8) | byte;
}

// \w of Rust's regex crate, which Hugging Face uses for single_word:
// Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control.
bool IsWordChar(char32_t c) {
  if (c < 0x80) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
  }
  if (c == 0x200C || c == 0x200D) return true;
  if (u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC)) {
    return true;
  }
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_NON_SPACING_MARK:
    case U_ENCLOSING_MARK:
    case U_COMBINING_SPACING_MARK:
    case U_DECIMAL_DIGIT_NUMBER:
    case U_CONNECTOR_PUNCTUATION:
      return true;
    default:
      return false;
  }
}

bool IsSpace(char32_t c) { return ClassifyChar(c) == CharClass::kWhitespace; }

// The start of the character that ends at `end` (> 0) in well-formed UTF-8.
size_t PreviousCharStart(absl::string_view text, size_t end) {
  size_t pos = end - 1;
  while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) {
    --pos;
  }
  return pos;
}

bool EndsWithWordChar(absl::string_view text, size_t end) {
  if (end == 0) return false;
  return IsWordChar(DecodeUtf8(text, PreviousCharStart(text, end)).code_point);
}

bool StartsWithWordChar(absl::string_view text, size_t pos) {
  if (pos >= text.size()) return false;
  return IsWordChar(DecodeUtf8(text, pos).code_point);
}

// Start of the run of white space that ends at `end`.
size_t WhitespaceRunStartBefore(absl::string_view text, size_t end) {
  while (end > 0) {
    const size_t start = PreviousCharStart(text, end);
    if (!IsSpace(DecodeUtf8(text, start).code_point)) break;
    end = start;
  }
  return end;
}

// End of the run of white space that starts at `pos`.
size_t WhitespaceRunEndAfter(absl::string_view text, size_t pos) {
  while (pos < text.size()) {
    const Utf8Step step = DecodeUtf8(text, pos);
    if (!IsSpace(step.code_point)) break;
    pos += step.length;
  }
  return pos;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher()
    : node_token_{-1}, first_pairs_(65536 / 64, 0) {}

void AddedTokenMatcher::Add(absl::string_view pattern,
                            const AddedToken& token) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (char c : pattern) {
    const unsigned char byte = static_cast<unsigned char>(c);
    const auto [it, inserted] = edges_.try_emplace(
        EdgeKey(node, byte), static_cast<int32_t>(node_token_.size()));
    if (inserted) node_token_.push_back(-1);
    node = it->second;
  }
  if (node_token_[node] >= 0) return;
  node_token_[node] = static_cast<int32_t>(tokens_.size());
  tokens_.push_back(token);
  const unsigned char first = static_cast<unsigned char>(pattern[0]);
  first_bytes_[first] = true;
  if (pattern.size() == 1) {
    single_byte_patterns_[first] = true;
  } else {
    const size_t pair =
        (size_t{first} << 8) | static_cast<unsigned char>(pattern[1]);
    first_pairs_[pair / 64] |= uint64_t{1} << (pair % 64);
  }
}

std::vector<AddedTokenMatcher::Match> AddedTokenMatcher::FindMatches(
    absl::string_view text) const {
  std::vector<Match> matches;
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t pos = 0;
  while (pos < size) {
    // Skip to the next byte that can start a pattern.
    while (pos < size && !first_bytes_[bytes[pos]]) ++pos;
    if (pos >= size) break;
    const unsigned char first = bytes[pos];
    if (!single_byte_patterns_[first]) {
      if (pos + 1 >= size) break;
      const size_t pair = (size_t{first} << 8) | bytes[pos + 1];
      if ((first_pairs_[pair / 64] & (uint64_t{1} << (pair % 64))) == 0) {
        ++pos;
        continue;
      }
    }
    // The longest pattern that starts here.
    int32_t node = 0;
    int32_t best_token = -1;
    size_t best_end = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      const auto it =
          edges_.find(EdgeKey(node, static_cast<unsigned char>(text[i])));
      if (it == edges_.end()) break;
      node = it->second;
      if (node_token_[node] >= 0) {
        best_token = node_token_[node];
        best_end = i + 1;
      }
    }
    if (best_token < 0) {
      ++pos;
      continue;
    }
    matches.push_back({pos, best_end, best_token});
    pos = best_end;
  }
  return matches;
}

void AddedTokenMatcher::Split(
    absl::string_view text, bool parse_special_tokens,
    absl::FunctionRef<void(absl::string_view piece, int32_t id)> emit) const {
  if (tokens_.empty() || text.empty()) {
    if (!text.empty()) emit(text, -1);
    return;
  }
  // Mirrors AddedVocabulary::find_matches of Hugging Face `tokenizers`,
  // including its treatment of a match that starts inside the white space an
  // rstrip token swallowed (taken as it is, overlapping, unless nothing of it
  // is left).
  size_t piece_start = 0;
  for (const Match& match : FindMatches(text)) {
    const AddedToken& token = tokens_[match.token_index];
    if (token.special && !parse_special_tokens) continue;
    size_t start = match.start;
    size_t stop = match.end;
    if (token.single_word) {
      const bool space_before = start == 0 || !EndsWithWordChar(text, start);
      const bool space_after =
          stop == text.size() || !StartsWithWordChar(text, stop);
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) {
      start = std::max(WhitespaceRunStartBefore(text, start), piece_start);
    }
    if (token.rstrip) stop = WhitespaceRunEndAfter(text, stop);
    if (stop <= start) {
      // The white space an rstrip token swallowed already covers this match
      // (Hugging Face drops the empty piece; it would fail on the reversed
      // range that start > stop means, which cannot come from real files).
      piece_start = std::max(piece_start, stop);
      continue;
    }
    if (piece_start < start) {
      emit(text.substr(piece_start, start - piece_start), -1);
    }
    emit(text.substr(start, stop - start), token.id);
    piece_start = stop;
  }
  if (piece_start < text.size()) {
    emit(text.substr(piece_start), -1);
  }
}

}  // namespace blockserve::tokenizer
