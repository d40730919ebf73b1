#include "shared/model/kv_cache.h"

#include <algorithm>
#include <cstdint>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "shared/common/status_macros.h"

namespace blockserve {

absl::Status PagedKvCache::CheckDType(DType dtype) {
  if (dtype == DType::kF32 || dtype == DType::kF16) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("KV cache entries must be f32 or f16, not ", DTypeName(dtype)));
}

int64_t PagedKvCache::PageBytes(const NeoxStackConfig& stack, int page_size, DType dtype) {
  return int64_t{2} * stack.num_layers * stack.num_heads * page_size * stack.head_dim *
         static_cast<int64_t>(DTypeSize(dtype));
}

absl::Status PagedKvCache::CheckFits(int64_t entries, absl::string_view what) const {
  const int pages = PagesFor(entries);
  if (pages > num_pages()) {
    return absl::ResourceExhaustedError(absl::StrCat("request needs ", pages * page_bytes_,
                                                     " bytes of ", what, ", more than the ",
                                                     capacity_bytes(), " bytes configured"));
  }
  return absl::OkStatus();
}

absl::StatusOr<PagedKvCache> PagedKvCache::CreateWithBudget(Backend& backend,
                                                            const NeoxStackConfig& stack,
                                                            int page_size, int64_t budget_bytes,
                                                            DType dtype) {
  RETURN_IF_ERROR(CheckDType(dtype));
  if (page_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache needs a positive page size, got ", page_size));
  }
  const int64_t page_bytes = PageBytes(stack, page_size, dtype);
  const int64_t pages = budget_bytes / page_bytes;
  if (pages < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV cache budget of ", budget_bytes, " bytes is below one page (", page_bytes, " bytes)"));
  }
  return Create(backend, stack, page_size, static_cast<int>(std::min<int64_t>(pages, INT32_MAX)),
                dtype);
}

absl::StatusOr<PagedKvCache> PagedKvCache::Create(Backend& backend, const NeoxStackConfig& stack,
                                                  int page_size, int num_pages, DType dtype) {
  RETURN_IF_ERROR(CheckDType(dtype));
  if (page_size <= 0 || num_pages <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV cache needs positive page size and page count, got ", page_size, " and ", num_pages));
  }
  PagedKvCache cache;
  cache.page_size_ = page_size;
  cache.page_bytes_ = PageBytes(stack, page_size, dtype);
  for (int i = 0; i < stack.num_layers; ++i) {
    KvCacheLayer layer;
    layer.page_size = page_size;
    Shape shape = {num_pages, stack.num_heads, page_size, stack.head_dim};
    ASSIGN_OR_RETURN(layer.k, backend.Empty(dtype, shape));
    ASSIGN_OR_RETURN(layer.v, backend.Empty(dtype, shape));
    cache.layers_.push_back(std::move(layer));
  }
  cache.free_.resize(num_pages);
  // Highest page on the bottom of the stack, so page 0 is handed out first.
  std::iota(cache.free_.rbegin(), cache.free_.rend(), 0);
  return cache;
}

absl::Status PagedKvCache::Reserve(KvSequence& seq, int64_t entries) {
  const int needed = PagesFor(entries) - static_cast<int>(seq.pages.size());
  if (needed <= 0) return absl::OkStatus();
  if (needed > free_pages()) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache full: ", needed,
                                                     " more pages needed, ", free_pages(), " of ",
                                                     num_pages(), " free"));
  }
  for (int i = 0; i < needed; ++i) {
    seq.pages.push_back(free_.back());
    free_.pop_back();
  }
  return absl::OkStatus();
}

void PagedKvCache::Release(KvSequence& seq) {
  free_.insert(free_.end(), seq.pages.rbegin(), seq.pages.rend());
  seq.pages.clear();
  seq.length = 0;
}

}  // namespace blockserve
