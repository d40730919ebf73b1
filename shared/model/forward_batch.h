// ForwardBatch: the device-side description of one batched forward pass over
// a PagedKvCache: which packed rows belong to which sequence, each row's
// position, and where each row's key/value goes.
//
// Built on the host from the sequences' KvSequence state and uploaded to the
// backend in one go. Building a batch appends the new rows to each sequence
// (advances KvSequence::length), so the caller must Reserve() the pages
// first. Value type; not thread-safe.
#ifndef BLOCKSERVE_SHARED_MODEL_FORWARD_BATCH_H_
#define BLOCKSERVE_SHARED_MODEL_FORWARD_BATCH_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/backend.h"
#include "shared/model/kv_cache.h"

namespace blockserve {

// Which of a sequence's new rows a forward pass returns outputs for.
enum class OutputRows : uint8_t {
  kNone,  // none (a prefill chunk that is not the last)
  kLast,  // the last new row (generation)
  kAll,   // every new row that predicts something (scoring)
};

// One sequence's share of a batch: `new_rows` rows appended after its
// `kv->length` cached entries.
struct ForwardSequence {
  KvSequence* kv = nullptr;
  int32_t new_rows = 0;
};

struct ForwardBatch {
  int64_t rows = 0;
  AttentionLayout layout;
  Tensor positions;  // I32 [rows]: position of each row in its sequence
  // Host copy of the first row of each sequence in the packed rows.
  std::vector<int32_t> row_starts;  // [num_seqs + 1]
};

// Builds and uploads the batch, then advances each kv->length by new_rows.
absl::StatusOr<ForwardBatch> BuildForwardBatch(Backend& backend,
                                               absl::Span<const ForwardSequence> sequences,
                                               const PagedKvCache& cache);

// Uploads a host vector as an I32 tensor of shape {values.size()} (or `shape`).
absl::StatusOr<Tensor> UploadI32(Backend& backend, absl::Span<const int32_t> values);

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_MODEL_FORWARD_BATCH_H_
