// The CUDA kernels of the CUDA backend, as plain launch functions.
//
// Internal to kernels/cuda: CudaBackend (host C++) checks the Tensor
// arguments of each op and calls these with raw device pointers; each is
// implemented in its own .cu file (layer_norm.cu, attention.cu, ...). This
// header is the only one the .cu files share with the host code, so it stays
// free of Abseil and project types: the .cu files compile with nvcc alone.
//
// Every launcher enqueues its work on `stream`, never synchronizes, and
// returns the launch status (cudaGetLastError() after the launch; errors of
// the running kernels surface at the next stream synchronization). Sizes of
// zero launch nothing. Indices read from device memory (rows, slots, pages,
// targets) are bounds-checked on the device: a bad one skips its element and
// sets a bit of `error_word` (DeviceErrorBits), which the backend reports
// from Synchronize(). Thread-safety: as the CUDA stream passed in.
#ifndef BLOCKSERVE_KERNELS_CUDA_CUDA_KERNELS_H_
#define BLOCKSERVE_KERNELS_CUDA_CUDA_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace blockserve::cuda {

// Bits of the device-side error word.
enum DeviceErrorBits : uint32_t {
  kErrorCopyRowsIndex = 1u << 0,    // CopyRows: source or target row out of range
  kErrorKvSlot = 1u << 1,           // Attention: slot_mapping entry outside the cache
  kErrorPageTable = 1u << 2,        // Attention: page_table entry outside the cache
  kErrorAttentionLayout = 1u << 3,  // Attention: query_starts / kv_lens inconsistent
  kErrorTargetId = 1u << 4,         // TargetLogProbs: target id outside [0, V)
};

// Floating element types of weights (the backend's DType, without its header).
enum class ElementType : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

// Sets *error_word = 0 with a one-thread kernel. Run once when the backend
// starts: it also proves that this binary has kernels for the device.
cudaError_t LaunchResetErrorWord(uint32_t* error_word, cudaStream_t stream);

// ---- MatMul helpers (matmul_epilogue.cu) ----
// out[i] = round_to_nearest_even(x[i]) in F16 or BF16 (raw 16-bit patterns).
cudaError_t LaunchConvertF32To16(const float* x, int64_t count, ElementType type, void* out,
                                 cudaStream_t stream);
// y[r, c] = act(y[r, c] + bias[c]) over y [m, n]; bias may be null; act is
// exact (erf) GELU when `gelu`, else identity.
cudaError_t LaunchBiasActivation(float* y, const float* bias, int64_t m, int64_t n, bool gelu,
                                 cudaStream_t stream);

// ---- layer_norm.cu ----
// y = (x - mean) / sqrt(var + eps) * gamma + beta per row of [m, d]; y may be x.
cudaError_t LaunchLayerNorm(const float* x, const float* gamma, const float* beta, float eps,
                            int64_t m, int64_t d, float* y, cudaStream_t stream);

// ---- copy_rows.cu ----
// dst[dst_rows[i]] = F32(src[src_rows[i]]) for i < n; dst_rows null means
// dst row i. src [src_count, width] of `src_type`; dst F32 [dst_count, width].
cudaError_t LaunchCopyRows(const void* src, ElementType src_type, int64_t src_count, int64_t width,
                           const int32_t* src_rows, int64_t n, float* dst, int64_t dst_count,
                           const int32_t* dst_rows, uint32_t* error_word, cudaStream_t stream);

// ---- rotary.cu ----
// NeoX rotary embedding in place on the q and k of qkv [m, heads * 3 *
// head_dim]; inv_freq holds rotary_dims / 2 inverse frequencies.
cudaError_t LaunchRotary(float* qkv, int64_t m, const int32_t* positions, const float* inv_freq,
                         int num_heads, int head_dim, int rotary_dims, cudaStream_t stream);

// ---- attention.cu ----
struct PagedAttentionArgs {
  const float* qkv = nullptr;  // [rows, heads * 3 * head_dim]
  void* k_cache = nullptr;     // [num_pages, heads, page_size, head_dim]
  void* v_cache = nullptr;
  bool kv_f16 = false;                    // cache entries: F16 (rounded when written), else F32
  const int32_t* query_starts = nullptr;  // [num_seqs + 1]
  const int32_t* kv_lens = nullptr;       // [num_seqs]
  const int32_t* page_table = nullptr;    // [num_seqs, max_pages_per_seq]
  const int32_t* slot_mapping = nullptr;  // [rows]
  float* out = nullptr;                   // [rows, heads * head_dim]
  int64_t rows = 0;
  int num_seqs = 0;
  int max_pages_per_seq = 0;
  int64_t num_pages = 0;
  int page_size = 0;
  int num_heads = 0;
  int head_dim = 0;
  float scale = 0.0f;  // 1 / sqrt(head_dim)
  uint32_t* error_word = nullptr;
};
// The largest head_dim the attention kernel handles.
constexpr int kMaxAttentionHeadDim = 512;
// Writes the k and v of every row to its cache slot, then computes causal
// attention of every (row, head) over its sequence's cached keys.
cudaError_t LaunchPagedAttention(const PagedAttentionArgs& args, cudaStream_t stream);

// ---- softmax.cu ----
// For each row of logits [m, v]: out[r, :] = logits[r, :] - logsumexp (when
// out is not null) and target_out[r] = logits[r, targets[r]] - logsumexp
// (when targets is not null).
cudaError_t LaunchLogSoftmax(const float* logits, int64_t m, int64_t v, float* out,
                             const int32_t* targets, float* target_out, uint32_t* error_word,
                             cudaStream_t stream);

// ---- sampling.cu ----
enum class SampleMode : int32_t {
  kGreedy = 0,  // argmax, lowest id on ties
  kPlain = 1,   // temperature, no top-k / top-p cut: walk in id order
  kSorted = 2,  // a top-k and/or top-p cut: walk in sorted order
};
// One row's sampling settings, prepared on the host (kernels/cpu/sampling.cc
// is the rule book).
struct SampleRowParams {
  double draw = 0.0;             // u = SamplingDraw(seed, position) in [0, 1)
  float inv_temperature = 0.0f;  // 1.0f / temperature (kPlain, kSorted)
  SampleMode mode = SampleMode::kGreedy;
  int32_t top_k = 0;   // kSorted: the k cut, or 0 for none
  float top_p = 1.0f;  // kSorted: the nucleus mass
  int32_t cut_p = 0;   // kSorted: 1 when top_p < 1 cuts
};
// Pass 1 over every row of logits [m, v]: writes row_max[r] and
// row_log_sum[r] (log of sum(exp(logit - max))), and for kGreedy and kPlain
// rows the token and its log-probability.
cudaError_t LaunchSampleRows(const float* logits, int64_t m, int64_t v,
                             const SampleRowParams* params, int32_t* tokens, float* logprobs,
                             float* row_max, float* row_log_sum, cudaStream_t stream);
// Copies `count` rows (ids in rows[]) of logits into keys [count, v], fills
// ids [count, v] with 0..v-1 and offsets [count + 1] with g * v.
cudaError_t LaunchGatherSortInput(const float* logits, int64_t v, const int32_t* rows, int count,
                                  float* keys, int32_t* ids, int32_t* offsets, cudaStream_t stream);
// Sorts each of the `count` segments of v (key, id) pairs by key descending;
// stable, so equal keys keep ids ascending. With temp == nullptr only sets
// *temp_bytes (the cub two-phase protocol).
cudaError_t SortSegmentsDescending(void* temp, size_t* temp_bytes, const float* keys_in,
                                   float* keys_out, const int32_t* ids_in, int32_t* ids_out,
                                   int count, int64_t v, const int32_t* offsets,
                                   cudaStream_t stream);
// Pass 2 for `count` kSorted rows (ids in rows[]) whose candidates were
// sorted into sorted_keys / sorted_ids [count, v]: writes token and logprob.
cudaError_t LaunchSampleSortedRows(const float* logits, int64_t v, const SampleRowParams* params,
                                   const int32_t* rows, int count, const float* sorted_keys,
                                   const int32_t* sorted_ids, const float* row_max,
                                   const float* row_log_sum, int32_t* tokens, float* logprobs,
                                   cudaStream_t stream);

}  // namespace blockserve::cuda

#endif  // BLOCKSERVE_KERNELS_CUDA_CUDA_KERNELS_H_
