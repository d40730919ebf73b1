// The "added_tokens" of a tokenizer.json and how they are cut out of text
// before normalization and BPE, reproducing Hugging Face `tokenizers`:
//
// - Tokens with "normalized": false are found in the raw text; the rest of
//   the text is normalized and tokens with "normalized": true are then found,
//   by their normalized content, in each normalized piece.
// - Matching is leftmost-longest and non-overlapping over all tokens of a set
//   (as an Aho-Corasick automaton with MatchKind::LeftmostLongest finds them).
// - "single_word": a match is dropped when a word character (\w: alphabetic,
//   marks, decimal digits, connector punctuation, ZWJ/ZWNJ) touches it on
//   either side.
// - "lstrip"/"rstrip": the token also swallows the white space (\s) on its
//   left (never before the end of the previous piece) or right.
// - Special tokens can be left unrecognized (EncodeOptions::
//   parse_special_tokens = false); the match is then dropped as a whole.
//
// Immutable after construction; thread-safe.
#ifndef BLOCKSERVE_SHARED_TOKENIZER_ADDED_TOKENS_H_
#define BLOCKSERVE_SHARED_TOKENIZER_ADDED_TOKENS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace blockserve::tokenizer {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
};

// Finds one set of added tokens (the raw or the normalized set) in text.
class AddedTokenMatcher {
 public:
  AddedTokenMatcher();

  // Adds `token`, to be found as `pattern` (its content, or its normalized
  // content). An empty pattern is ignored. A pattern added twice keeps the
  // first token.
  void Add(absl::string_view pattern, const AddedToken& token);

  bool empty() const { return tokens_.empty(); }

  // Cuts `text` into consecutive pieces: text pieces (id -1) and added tokens
  // (their id), calling `emit` for each non-empty one in order.
  void Split(
      absl::string_view text, bool parse_special_tokens,
      absl::FunctionRef<void(absl::string_view piece, int32_t id)> emit) const;

 private:
  struct Match {
    size_t start;
    size_t end;
    int32_t token_index;
  };
  // Leftmost-longest, non-overlapping matches of the patterns.
  std::vector<Match> FindMatches(absl::string_view text) const;

  // The trie: node 0 is the root; an edge is (node, byte) -> node.
  absl::flat_hash_map<uint64_t, int32_t> edges_;
  std::vector<int32_t> node_token_;  // token index or -1, per node
  // Fast rejection of positions where no pattern can start: the first byte
  // of every pattern, the first two bytes of longer ones (a 64K-bit set), and
  // the bytes that are whole patterns.
  bool first_bytes_[256] = {};
  bool single_byte_patterns_[256] = {};
  std::vector<uint64_t> first_pairs_;
  std::vector<AddedToken> tokens_;
};

}  // namespace blockserve::tokenizer

#endif  // BLOCKSERVE_SHARED_TOKENIZER_ADDED_TOKENS_H_
