// Turns a stream of token ids into text pieces for streaming to clients.
//
// A token may end in the middle of a UTF-8 character (byte-level BPE splits
// rare characters and emoji into byte tokens), so Push holds back the bytes of
// an incomplete character until the tokens that complete it arrive. Every
// piece returned is whole, well-formed UTF-8, and the concatenation of all
// pieces plus Finish() equals Tokenizer::Decode of all the ids together
// (with the same skip_special_tokens): bytes that can no longer become a
// valid character are emitted as U+FFFD as soon as that is certain, and an
// incomplete character still pending at Finish() becomes one U+FFFD.
//
// Holds a reference to the Tokenizer, which must outlive it. One
// StreamingDetokenizer per stream; not thread-safe (the tokenizer itself may
// be shared by any number of detokenizers on any threads).
#ifndef BLOCKSERVE_SHARED_TOKENIZER_STREAMING_DETOKENIZER_H_
#define BLOCKSERVE_SHARED_TOKENIZER_STREAMING_DETOKENIZER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "shared/tokenizer/tokenizer.h"

namespace blockserve {

class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer,
                                bool skip_special_tokens = false);

  // The text that `id` (or `ids`) completes; often empty when a character is
  // still incomplete. An id outside the vocabulary is INVALID_ARGUMENT (the
  // id is named) and leaves the state unchanged.
  absl::StatusOr<std::string> Push(int32_t id);
  absl::StatusOr<std::string> Push(absl::Span<const int32_t> ids);

  // The rest: U+FFFD for an incomplete character still pending, else empty.
  // The detokenizer is empty afterwards and can start a new stream.
  std::string Finish();

  // Bytes held back (at most 3: a partial character).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  // Moves every complete (or certainly invalid) character of pending_ to
  // `out`, keeping only a valid-but-incomplete tail.
  void Drain(std::string* out);

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_TOKENIZER_STREAMING_DETOKENIZER_H_
