// PagedKvCache: the key/value memory of one GPT-NeoX stack for many
// sequences, in fixed-size pages.
//
// Each layer holds K and V tensors of [num_pages, heads, page_size, head_dim]
// on the backend, F32 or F16 (half the memory and the bytes attention reads
// per token; entries are rounded once when written). A sequence owns an ordered list of pages (a
// KvSequence); entry j of the sequence lives in page pages[j / page_size] at offset j % page_size.
// Pages come from one free list, so sequences of any length share a fixed memory budget without
// fragmentation, and a finished sequence's pages are reusable at once.
//
// "Entries" are blocks for a block decoder (one per L_B tokens), tokens for a
// vanilla model, and positions of the current block for a token decoder.
//
// Thread-compatible: the owning scheduler serializes all calls.
#ifndef BLOCKSERVE_SHARED_MODEL_KV_CACHE_H_
#define BLOCKSERVE_SHARED_MODEL_KV_CACHE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/backend.h"
#include "shared/model/model_config.h"

namespace blockserve {

// The pages and length of one sequence's cache. Owned by the scheduler's
// per-sequence state; must be released with PagedKvCache::Release.
struct KvSequence {
  std::vector<int32_t> pages;
  int32_t length = 0;  // entries written so far
};

class PagedKvCache {
 public:
  // Allocates `num_pages` pages of `page_size` entries for every layer of
  // `stack`, holding `dtype` (F32 or F16, else INVALID_ARGUMENT).
  static absl::StatusOr<PagedKvCache> Create(Backend& backend, const NeoxStackConfig& stack,
                                             int page_size, int num_pages,
                                             DType dtype = DType::kF32);
  // As many pages as fit in `budget_bytes` (INVALID_ARGUMENT below one page).
  static absl::StatusOr<PagedKvCache> CreateWithBudget(Backend& backend,
                                                       const NeoxStackConfig& stack, int page_size,
                                                       int64_t budget_bytes,
                                                       DType dtype = DType::kF32);
  // Bytes one page takes across all layers (K and V).
  static int64_t PageBytes(const NeoxStackConfig& stack, int page_size, DType dtype = DType::kF32);
  // OK for the entry types a cache can hold (F32, F16).
  static absl::Status CheckDType(DType dtype);

  PagedKvCache(PagedKvCache&&) = default;
  PagedKvCache& operator=(PagedKvCache&&) = default;

  int page_size() const { return page_size_; }
  int num_pages() const { return static_cast<int>(layers_.empty() ? 0 : layers_[0].k.dim(0)); }
  int free_pages() const { return static_cast<int>(free_.size()); }
  int used_pages() const { return num_pages() - free_pages(); }
  int64_t page_bytes() const { return page_bytes_; }
  int64_t capacity_bytes() const { return page_bytes_ * num_pages(); }
  int64_t used_bytes() const { return page_bytes_ * used_pages(); }
  const KvCacheLayer& layer(int i) const { return layers_[i]; }

  // Pages needed to hold `entries` entries.
  int PagesFor(int64_t entries) const {
    return static_cast<int>((entries + page_size_ - 1) / page_size_);
  }
  // RESOURCE_EXHAUSTED, naming `what` ("KV cache"), when a sequence of
  // `entries` entries could never fit, even in an empty cache.
  absl::Status CheckFits(int64_t entries, absl::string_view what) const;
  // Grows `seq` so that it can hold `entries` entries in total. Fails with
  // RESOURCE_EXHAUSTED (and leaves `seq` unchanged) when not enough pages are free.
  absl::Status Reserve(KvSequence& seq, int64_t entries);
  // Returns all of `seq`'s pages to the free list and resets it.
  void Release(KvSequence& seq);

 private:
  PagedKvCache() = default;
  int page_size_ = 0;
  int64_t page_bytes_ = 0;
  std::vector<KvCacheLayer> layers_;
  std::vector<int32_t> free_;  // a stack: the most recently freed page is reused first
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_MODEL_KV_CACHE_H_
