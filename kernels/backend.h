// Backend: the op table that every compute device implements.
//
// The model code (shared/model) expresses a forward pass as a sequence of the
// ops below on device Tensors and never touches device memory directly. The
// CPU backend (kernels/cpu) is the reference: simple, always built, and the
// ground truth of the parity tests. Other backends (kernels/cuda) mirror it
// op for op.
//
// Execution model: ops are *enqueued* in call order on the backend's single
// stream and may run asynchronously (the CPU backend runs them before
// returning). CopyToDevice has read its host source when it returns (the
// caller may reuse it at once); the host destination of CopyToHost is filled
// only once Synchronize() returns. Ops do not return errors:
// argument mismatches are programming errors (CHECK-failures), and device
// errors are sticky and reported by the next Synchronize(), which also waits
// for all enqueued work. Index values that live in device memory (row ids,
// slots, targets) are checked by the CPU backend with CHECK; a GPU backend
// skips an out-of-range element and reports it from Synchronize(). A Backend is used by one thread at a time; separate
// Backend instances may run concurrently.
#ifndef BLOCKSERVE_KERNELS_BACKEND_H_
#define BLOCKSERVE_KERNELS_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "shared/tensor/tensor.h"

namespace blockserve {

// Elementwise function applied after the bias in MatMul.
enum class Activation : uint8_t { kNone, kGelu };

// Where the rows of a batched attention call come from and where their keys
// and values live. Rows of all sequences are packed one after another.
// All index tensors are I32 on the backend's device.
struct AttentionLayout {
  int num_seqs = 0;
  int max_query_len = 0;      // longest q_len in the batch
  int max_kv_len = 0;         // longest kv_len in the batch
  int max_pages_per_seq = 0;  // row stride of page_table
  // [num_seqs + 1]: the rows of sequence s are [query_starts[s], query_starts[s+1]).
  Tensor query_starts;
  // [num_seqs]: KV entries of sequence s once this call's rows are appended.
  // Query row i of sequence s (of q_len rows) is at position
  // kv_len - q_len + i and attends to keys 0..that position (causal).
  Tensor kv_lens;
  // [num_seqs, max_pages_per_seq]: the cache pages of each sequence, in order.
  Tensor page_table;
  // [rows]: cache slot (page * page_size + offset in page) of each new row.
  Tensor slot_mapping;
};

// One layer's paged KV cache: K and V of [num_pages, heads, page_size, head_dim].
struct KvCacheLayer {
  Tensor k;
  Tensor v;
  int page_size = 0;
};

// Sampling settings of one row of logits. The draw depends only on (seed,
// position), never on the batch, so a row sampled twice gives the same token.
struct SamplingRow {
  float temperature = 0.0f;  // <= 0: greedy (argmax, lowest id on ties)
  int32_t top_k = 0;         // 0: no limit
  float top_p = 1.0f;        // 1: no nucleus cut
  uint64_t seed = 0;
  int64_t position = 0;      // position of the sampled token in its sequence
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual DeviceKind device() const = 0;
  // "cpu (2 threads)", "cuda:0 (NVIDIA H100)".
  virtual std::string Describe() const = 0;
  virtual Allocator& allocator() = 0;
  // Which weight dtypes MatMul and CopyRows accept as `w` / `src`.
  virtual bool SupportsWeightType(DType dtype) const = 0;

  // ---- Memory ----
  absl::StatusOr<Tensor> Empty(DType dtype, Shape shape) {
    return Tensor::Empty(allocator(), dtype, std::move(shape));
  }
  // Copies `dst.nbytes()` bytes from host memory into `dst`.
  virtual void CopyToDevice(const void* src, const Tensor& dst) = 0;
  // Copies `src.nbytes()` bytes of `src` into host memory.
  virtual void CopyToHost(const Tensor& src, void* dst) = 0;
  // Waits for all enqueued work; returns the first device error since the
  // last call, if any.
  virtual absl::Status Synchronize() = 0;

  // Returns weight `w` ([N, K], a supported weight type) in the layout this
  // backend's MatMul runs fastest on (the result may only be used as
  // MatMul's `w`). Called once per weight at load time. The default keeps
  // `w` as it is.
  virtual absl::StatusOr<Tensor> PrepareMatMulWeight(const Tensor& w) { return w; }

  // ---- Ops ----
  // y = (accumulate ? y : 0) + act(x * w^T + bias)
  // x: F32 [M, K]; w: [N, K] in a supported weight type; bias: F32 [N] or
  // empty; y: F32 [M, N]. Rows of y are independent of M (a row's result does
  // not depend on the other rows in the batch).
  virtual void MatMul(const Tensor& x, const Tensor& w, const Tensor& bias, Activation act,
                      bool accumulate, const Tensor& y) = 0;

  // y = (x - mean) / sqrt(var + eps) * gamma + beta, per row. x, y: F32
  // [M, D]; y may be x.
  virtual void LayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                         const Tensor& y) = 0;

  // dst[dst_rows[i]] = src[src_rows[i]] for i < src_rows.numel(); rows are
  // the last dimension. dst_rows empty means dst row i. `src` may be a weight
  // type (converted to F32); dst is F32. Embedding lookups are this op on
  // the embedding table.
  virtual void CopyRows(const Tensor& src, const Tensor& src_rows, const Tensor& dst,
                        const Tensor& dst_rows) = 0;

  // NeoX rotary embedding, in place, on the q and k parts of a packed qkv
  // matrix [M, heads * 3 * head_dim] laid out per head (q, k, v), using
  // positions (I32 [M]).
  virtual void Rotary(const Tensor& qkv, const Tensor& positions, int num_heads, int head_dim,
                      int rotary_dims, float base) = 0;

  // Appends the k and v of every row of `qkv` to `cache` at
  // layout.slot_mapping, then computes causal softmax(q k^T / sqrt(head_dim))
  // v per head over each sequence's cached keys. out: F32 [M, heads * head_dim].
  virtual void Attention(const Tensor& qkv, const KvCacheLayer& cache,
                         const AttentionLayout& layout, int num_heads, int head_dim,
                         const Tensor& out) = 0;

  // out = log_softmax(logits) per row. F32 [M, V]; out may be logits.
  virtual void LogSoftmax(const Tensor& logits, const Tensor& out) = 0;

  // out[i] = log_softmax(logits[i])[targets[i]]. targets I32 [M], out F32 [M].
  virtual void TargetLogProbs(const Tensor& logits, const Tensor& targets,
                              const Tensor& out) = 0;

  // Samples one token per row of logits (F32 [M, V]) into tokens (I32 [M]) and
  // writes the log-probability of each chosen token under the unmodified
  // distribution (temperature 1, no filtering) into logprobs (F32 [M]).
  // `rows` lives in host memory and holds M entries.
  virtual void Sample(const Tensor& logits, absl::Span<const SamplingRow> rows,
                      const Tensor& tokens, const Tensor& logprobs) = 0;
};

struct BackendOptions {
  std::string device = "cpu";  // "cpu" or "cuda" / "cuda:N"
  int threads = 0;             // CPU threads; 0 = all cores
};

// Creates the backend named by options.device; UNAVAILABLE with a clear
// message when that backend was not built or has no device.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options);

}  // namespace blockserve

#endif  // BLOCKSERVE_KERNELS_BACKEND_H_
