#include "shared/tokenizer/word_cache.h"

#include <algorithm>
#include <cstring>

#include "absl/hash/hash.h"

namespace blockserve::tokenizer {
namespace {

size_t RoundUpToPowerOfTwo(size_t n) {
  size_t power = 1;
  while (power < n) power <<= 1;
  return power;
}

// The word's bytes, zero-padded, as the slots store them.
struct PackedWord {
  uint64_t words[3] = {0, 0, 0};
  explicit PackedWord(absl::string_view word) {
    std::memcpy(words, word.data(), word.size());
  }
};

}  // namespace

WordCache::WordCache(size_t slots)
    : mask_(RoundUpToPowerOfTwo(std::max<size_t>(slots, kProbes)) - 1),
      slots_(new Slot[mask_ + 1]) {
  for (size_t i = 0; i <= mask_; ++i) {
    for (auto& word : slots_[i].word) word.store(0, std::memory_order_relaxed);
    for (auto& id : slots_[i].ids) id.store(0, std::memory_order_relaxed);
  }
}

bool WordCache::Lookup(absl::string_view word,
                       std::vector<int32_t>* ids) const {
  if (word.size() > kMaxWordBytes || word.empty()) return false;
  const size_t hash = absl::Hash<absl::string_view>()(word);
  const PackedWord key(word);
  for (size_t probe = 0; probe < kProbes; ++probe) {
    const Slot& slot = slots_[(hash + probe) & mask_];
    const uint32_t before = slot.sequence.load(std::memory_order_acquire);
    const uint32_t meta = slot.meta.load(std::memory_order_relaxed);
    if (before == 0 && meta == 0) return false;  // never written: stop here
    if ((before & 1) != 0 || (meta & 0xFF) != word.size()) continue;
    uint64_t stored_word[kWordWords];
    uint64_t stored_ids[kIdWords];
    for (size_t i = 0; i < kWordWords; ++i) {
      stored_word[i] = slot.word[i].load(std::memory_order_relaxed);
    }
    for (size_t i = 0; i < kIdWords; ++i) {
      stored_ids[i] = slot.ids[i].load(std::memory_order_relaxed);
    }
    // The seqlock read protocol: the contents are consistent only if no
    // writer started or finished in between.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (slot.sequence.load(std::memory_order_relaxed) != before) continue;
    if (std::memcmp(stored_word, key.words, sizeof(stored_word)) != 0) {
      continue;
    }
    const size_t count = (meta >> 8) & 0xFF;
    for (size_t i = 0; i < count; ++i) {
      ids->push_back(static_cast<int32_t>(
          static_cast<uint32_t>(stored_ids[i / 2] >> (32 * (i % 2)))));
    }
    return true;
  }
  return false;
}

void WordCache::Insert(absl::string_view word, absl::Span<const int32_t> ids) {
  if (word.size() > kMaxWordBytes || word.empty() || ids.size() > kMaxIds) {
    return;
  }
  const size_t hash = absl::Hash<absl::string_view>()(word);
  // The first never-written slot of the probe sequence, else one of them
  // chosen by the hash's high bits.
  size_t target = (hash >> 32) % kProbes;
  for (size_t probe = 0; probe < kProbes; ++probe) {
    if (slots_[(hash + probe) & mask_].meta.load(std::memory_order_relaxed) ==
        0) {
      target = probe;
      break;
    }
  }
  Slot& slot = slots_[(hash + target) & mask_];
  uint32_t sequence = slot.sequence.load(std::memory_order_relaxed);
  if ((sequence & 1) != 0 ||
      !slot.sequence.compare_exchange_strong(sequence, sequence + 1,
                                             std::memory_order_acquire)) {
    return;  // another writer has the slot; caching is only an optimization
  }
  std::atomic_thread_fence(std::memory_order_release);
  const PackedWord key(word);
  for (size_t i = 0; i < kWordWords; ++i) {
    slot.word[i].store(key.words[i], std::memory_order_relaxed);
  }
  uint64_t packed_ids[kIdWords] = {0, 0, 0, 0};
  for (size_t i = 0; i < ids.size(); ++i) {
    packed_ids[i / 2] |= static_cast<uint64_t>(static_cast<uint32_t>(ids[i]))
                         << (32 * (i % 2));
  }
  for (size_t i = 0; i < kIdWords; ++i) {
    slot.ids[i].store(packed_ids[i], std::memory_order_relaxed);
  }
  slot.meta.store(static_cast<uint32_t>(word.size() | (ids.size() << 8)),
                  std::memory_order_relaxed);
  slot.sequence.store(sequence + 2, std::memory_order_release);
}

}  // namespace blockserve::tokenizer
