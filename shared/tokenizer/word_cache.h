// A bounded, thread-safe cache from a pre-tokenized word (its UTF-8 bytes) to
// the BPE token ids it encodes to. Frequent words ("the", " and") are merged
// once and then looked up.
//
// Lock-free and read-mostly: an open-addressing table of 64-byte slots (one
// cache line), each holding a word and its ids inline, guarded by a sequence
// counter (a seqlock). Readers only load: they read the counter, the slot's
// contents and the counter again, and trust the contents only when the
// counter was even and unchanged; so threads looking up the same frequent
// words never write to shared memory and do not contend. A writer takes a
// slot by moving its counter from even to odd with a compare-and-swap
// (giving up if another writer holds it), fills it, and makes the counter
// even again. A word goes to the first empty slot of its probe sequence, or
// replaces one of those slots when all are full, so the cache keeps
// adapting to the text. Words longer than kMaxWordBytes or with more than
// kMaxIds ids are not cached. Owned by the BPE model; thread-safe.
#ifndef BLOCKSERVE_SHARED_TOKENIZER_WORD_CACHE_H_
#define BLOCKSERVE_SHARED_TOKENIZER_WORD_CACHE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace blockserve::tokenizer {

class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 24;
  static constexpr size_t kMaxIds = 8;

  // `slots` is rounded up to a power of two (64 bytes each).
  explicit WordCache(size_t slots = 1 << 15);
  WordCache(const WordCache&) = delete;
  WordCache& operator=(const WordCache&) = delete;

  // Appends the cached ids of `word` to `ids` and returns true, or returns
  // false (leaving `ids` alone) when `word` is not cached.
  bool Lookup(absl::string_view word, std::vector<int32_t>* ids) const;

  // Remembers `ids` for `word` (ignored when either is too long, or when
  // another thread is writing the slot).
  void Insert(absl::string_view word, absl::Span<const int32_t> ids);

 private:
  static constexpr size_t kWordWords = kMaxWordBytes / 8;  // 3
  static constexpr size_t kIdWords = kMaxIds / 2;          // 4
  struct alignas(64) Slot {
    // Even: stable; odd: being written.
    std::atomic<uint32_t> sequence{0};
    // Word size in the low byte, id count in the next; 0 = never written.
    std::atomic<uint32_t> meta{0};
    std::atomic<uint64_t> word[kWordWords];  // zero-padded bytes
    std::atomic<uint64_t> ids[kIdWords];     // two ids per word
  };
  static_assert(sizeof(Slot) == 64, "one cache line per slot");
  // How many consecutive slots a word may occupy.
  static constexpr size_t kProbes = 4;

  size_t mask_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace blockserve::tokenizer

#endif  // BLOCKSERVE_SHARED_TOKENIZER_WORD_CACHE_H_
