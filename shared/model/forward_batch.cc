#include "shared/model/forward_batch.h"

#include <algorithm>

#include "shared/common/logging.h"
#include "shared/common/status_macros.h"

namespace blockserve {

absl::StatusOr<Tensor> UploadI32(Backend& backend, absl::Span<const int32_t> values) {
  ASSIGN_OR_RETURN(Tensor tensor,
                   backend.Empty(DType::kI32, {static_cast<int64_t>(values.size())}));
  if (!values.empty()) backend.CopyToDevice(values.data(), tensor);
  return tensor;
}

absl::StatusOr<ForwardBatch> BuildForwardBatch(Backend& backend,
                                               absl::Span<const ForwardSequence> sequences,
                                               const PagedKvCache& cache) {
  ForwardBatch batch;
  const int num_seqs = static_cast<int>(sequences.size());
  int max_pages = 1;
  int max_query = 0;
  int max_kv = 0;
  batch.row_starts.reserve(num_seqs + 1);
  batch.row_starts.push_back(0);
  for (const ForwardSequence& seq : sequences) {
    const int32_t total = seq.kv->length + seq.new_rows;
    CHECK_GE(static_cast<int>(seq.kv->pages.size()), cache.PagesFor(total))
        << "KV pages not reserved before the forward pass";
    max_pages = std::max(max_pages, cache.PagesFor(total));
    max_query = std::max(max_query, seq.new_rows);
    max_kv = std::max(max_kv, total);
    batch.row_starts.push_back(batch.row_starts.back() + seq.new_rows);
  }
  batch.rows = batch.row_starts.back();

  std::vector<int32_t> kv_lens(num_seqs);
  std::vector<int32_t> page_table(static_cast<size_t>(num_seqs) * max_pages, 0);
  std::vector<int32_t> slots(batch.rows);
  std::vector<int32_t> positions(batch.rows);
  const int page_size = cache.page_size();
  for (int s = 0; s < num_seqs; ++s) {
    const ForwardSequence& seq = sequences[s];
    kv_lens[s] = seq.kv->length + seq.new_rows;
    // Sequences may hold pages reserved for later rows: only the used ones go in.
    const int used_pages = cache.PagesFor(kv_lens[s]);
    std::copy(seq.kv->pages.begin(), seq.kv->pages.begin() + used_pages,
              page_table.begin() + s * max_pages);
    for (int32_t i = 0; i < seq.new_rows; ++i) {
      const int32_t position = seq.kv->length + i;
      const int32_t row = batch.row_starts[s] + i;
      positions[row] = position;
      slots[row] = seq.kv->pages[position / page_size] * page_size + position % page_size;
    }
  }

  AttentionLayout& layout = batch.layout;
  layout.num_seqs = num_seqs;
  layout.max_query_len = max_query;
  layout.max_kv_len = max_kv;
  layout.max_pages_per_seq = max_pages;
  ASSIGN_OR_RETURN(layout.query_starts, UploadI32(backend, batch.row_starts));
  ASSIGN_OR_RETURN(layout.kv_lens, UploadI32(backend, kv_lens));
  ASSIGN_OR_RETURN(layout.page_table, UploadI32(backend, page_table));
  ASSIGN_OR_RETURN(layout.slot_mapping, UploadI32(backend, slots));
  ASSIGN_OR_RETURN(batch.positions, UploadI32(backend, positions));
  for (const ForwardSequence& seq : sequences) seq.kv->length += seq.new_rows;
  return batch;
}

}  // namespace blockserve
