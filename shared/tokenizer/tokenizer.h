// Blockserve's tokenizer: loads a Hugging Face tokenizer.json describing a
// byte-level BPE tokenizer (GPT-2, GPT-NeoX-20B/Pythia and the like) and
// encodes and decodes exactly as Hugging Face `tokenizers` does.
//
// Pipeline of Encode (each stage in its own file):
//   text -> repair invalid UTF-8 (utf8.h)
//        -> cut out added tokens with normalized: false (added_tokens.h)
//        -> normalize the rest (normalizer.h)
//        -> cut out added tokens with normalized: true
//        -> pre-tokenize into words (pre_tokenizer.h, split_pattern.h)
//        -> BPE each word (bpe_model.h)
//        -> [post-processor templates when add_special_tokens]
//        (post_processor.h)
// Decode maps each id to its bytes (byte-level characters back to bytes; an
// added token whose content is not byte-level text gives its UTF-8 as it is),
// concatenates them and repairs invalid UTF-8 (the ByteLevel decoder).
//
// Supported tokenizer.json features are listed in docs/tokenizer.md. A file
// that uses anything else is rejected at load by an UNIMPLEMENTED status
// whose message names the feature; output is never silently different.
//
// Invalid UTF-8: Encode does not fail on it. Each malformed part of the input
// is replaced by U+FFFD (one per maximal invalid subpart, as Python's
// bytes.decode("utf-8", "replace") and Rust's String::from_utf8_lossy do)
// and the repaired text is encoded; U+FFFD is then byte-level encoded like
// any other character. Decode never fails on byte sequences either: bytes
// that do not form valid UTF-8 (a token sequence cut inside a character)
// come out as U+FFFD in the same way, exactly as Hugging Face's decode.
// Ids outside the vocabulary are an INVALID_ARGUMENT error naming the id
// (Hugging Face would skip them silently).
//
// Ownership and threads: a Tokenizer is immutable after loading except for
// an internal lock-free word cache (word_cache.h); every const method may be
// called from any number of threads at once.
#ifndef BLOCKSERVE_SHARED_TOKENIZER_TOKENIZER_H_
#define BLOCKSERVE_SHARED_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "shared/tokenizer/added_tokens.h"
#include "shared/tokenizer/bpe_model.h"
#include "shared/tokenizer/normalizer.h"
#include "shared/tokenizer/post_processor.h"
#include "shared/tokenizer/pre_tokenizer.h"

namespace blockserve {

struct EncodeOptions {
  // Apply the post-processor's templates (e.g. a BOS token). GPT-2 and
  // GPT-NeoX-20B add nothing either way.
  bool add_special_tokens = false;
  // Recognize special added tokens ("<|endoftext|>") written in the text, as
  // Hugging Face does by default. A gateway encoding untrusted user text may
  // turn this off: the characters are then encoded as ordinary text.
  bool parse_special_tokens = true;
};

class Tokenizer {
 public:
  // Loads a tokenizer.json file. NOT_FOUND when it cannot be read,
  // INVALID_ARGUMENT when it is malformed, UNIMPLEMENTED when it uses an
  // unsupported feature; messages name the file and the field.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(
      const std::string& path);
  // Same from the file's contents; `source` names it in messages.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(
      absl::string_view json_text, absl::string_view source = "tokenizer.json");

  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // The ids of `text`, with no special tokens added: Hugging Face's
  // encode(text, add_special_tokens=False).ids.
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text) const;
  absl::StatusOr<std::vector<int32_t>> Encode(
      absl::string_view text, const EncodeOptions& options) const;

  // The text of `ids`: Hugging Face's decode(ids, skip_special_tokens).
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     bool skip_special_tokens) const;

  // Appends the raw bytes that `id` contributes to decoded text (possibly a
  // part of a UTF-8 character; nothing for a special token when
  // `skip_special_tokens`). For the streaming detokenizer.
  absl::Status AppendTokenBytes(int32_t id, bool skip_special_tokens,
                                std::string* bytes) const;

  // One past the largest id of the vocabulary or the added tokens (GPT-2:
  // 50257, GPT-NeoX-20B: 50277). An id below it that no token has (a gap in
  // the file's ids) is rejected like one beyond it.
  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }
  // The id of a token as the vocabulary spells it (byte-level text, e.g.
  // "Ġthe"), or of an added token's content.
  std::optional<int32_t> TokenToId(absl::string_view token) const;
  // The token an id stands for (added-token content or vocabulary string).
  absl::StatusOr<std::string> IdToToken(int32_t id) const;
  // True for added tokens marked special (skipped by skip_special_tokens).
  bool IsSpecial(int32_t id) const;
  // The added tokens, in file order.
  const std::vector<tokenizer::AddedToken>& added_tokens() const {
    return added_tokens_;
  }
  // The normalizer alone (e.g. for checks that decode(encode(x)) equals the
  // normalized x).
  std::string Normalize(absl::string_view text) const;

 private:
  struct TokenInfo {
    std::string text;   // vocabulary string or added-token content
    std::string bytes;  // what decoding it produces
    bool present = false;
    bool special = false;
  };
  Tokenizer() = default;
  absl::Status Load(const nlohmann::json& json);
  absl::Status CheckId(int32_t id) const;
  void EncodeNormalizedPiece(absl::string_view piece,
                             const EncodeOptions& options,
                             std::vector<int32_t>* ids) const;

  std::unique_ptr<tokenizer::BpeModel> model_;
  tokenizer::Normalizer normalizer_;
  std::optional<tokenizer::PreTokenizer> pre_tokenizer_;
  tokenizer::PostProcessor post_processor_;
  std::vector<tokenizer::AddedToken> added_tokens_;
  absl::flat_hash_map<std::string, int32_t> added_token_ids_;
  tokenizer::AddedTokenMatcher raw_matcher_;
  tokenizer::AddedTokenMatcher normalized_matcher_;
  std::vector<TokenInfo> tokens_;  // indexed by id
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_TOKENIZER_TOKENIZER_H_
