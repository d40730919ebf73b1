// Causal attention over the paged KV cache, on the GPU.
//
// Two kernels on the backend's stream: KvAppendKernel writes the k and v of
// every new row to its cache slot; PagedAttentionKernel then runs one block
// per (query row, head). A block walks its sequence's keys in tiles of kTile:
// it looks up the tile's pages once, computes the scores (one warp per key,
// the lanes splitting head_dim), and folds the tile into an online softmax
// (running max m, running sum l, accumulator acc rescaled by exp(m_old -
// m_new)), each thread owning head_dim / kThreads output dimensions. Rows
// are independent, so decode (one row per sequence) and chunked prefill
// (many rows per sequence) use the same kernel.
//
// The cache holds F32 or F16 entries (KvT); F16 is rounded once when
// written and widened as it is read, all arithmetic in F32, as on the CPU.
//
// Memory per block is one query vector and one tile of scores, whatever the
// sequence length. Every block re-reads its sequence's K and V (from L2 for
// the rows of a prefill chunk); a tiled multi-row kernel would read them
// once per tile of rows (see docs/cuda.md).
#include <cuda_fp16.h>

#include <cmath>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_utils.cuh"

namespace blockserve::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 32;  // keys per tile; <= kThreads
constexpr int kMaxDimsPerThread = kMaxAttentionHeadDim / kThreads;
static_assert(kMaxAttentionHeadDim % kThreads == 0, "head dims split evenly over threads");
static_assert(kTile <= kThreads, "one thread per key of a tile");

__device__ inline int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ inline float KvToF32(float x) { return x; }
__device__ inline float KvToF32(__half x) { return __half2float(x); }
template <typename KvT>
__device__ inline KvT KvFromF32(float x);
template <>
__device__ inline float KvFromF32<float>(float x) {
  return x;
}
template <>
__device__ inline __half KvFromF32<__half>(float x) {
  return __float2half_rn(x);
}

// Items are (row, head, d) with d fastest.
template <typename KvT>
__global__ void KvAppendKernel(const PagedAttentionArgs a) {
  KvT* k_cache = static_cast<KvT*>(a.k_cache);
  KvT* v_cache = static_cast<KvT*>(a.v_cache);
  const int64_t head_dim = a.head_dim;
  const int64_t width = 3 * a.num_heads * head_dim;
  const int64_t total = a.rows * a.num_heads * head_dim;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += stride) {
    const int64_t d = e % head_dim;
    const int64_t row_head = e / head_dim;
    const int64_t h = row_head % a.num_heads;
    const int64_t row = row_head / a.num_heads;
    const int64_t slot = a.slot_mapping[row];
    const int64_t page = slot / a.page_size;
    const int64_t offset = slot % a.page_size;
    if (slot < 0 || page >= a.num_pages) {
      atomicOr(a.error_word, kErrorKvSlot);
      continue;
    }
    const int64_t dst = ((page * a.num_heads + h) * a.page_size + offset) * head_dim + d;
    const int64_t src = row * width + (h * 3 + 1) * head_dim + d;  // k; v follows it
    k_cache[dst] = KvFromF32<KvT>(a.qkv[src]);
    v_cache[dst] = KvFromF32<KvT>(a.qkv[src + head_dim]);
  }
}

// Dynamic shared memory: head_dim floats of query, then kTile floats of
// scores (later probabilities) of the current tile.
template <typename KvT>
__global__ void __launch_bounds__(kThreads) PagedAttentionKernel(const PagedAttentionArgs a) {
  const KvT* k_cache = static_cast<const KvT*>(a.k_cache);
  const KvT* v_cache = static_cast<const KvT*>(a.v_cache);
  extern __shared__ float shared[];
  __shared__ int64_t key_offset[kTile];  // element offset of each tile key's row; -1: bad page
  const int head_dim = a.head_dim;
  float* q = shared;
  float* probs = shared + head_dim;
  const int64_t row = blockIdx.x / a.num_heads;
  const int h = static_cast<int>(blockIdx.x % a.num_heads);
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  float* out = a.out + row * a.num_heads * head_dim + int64_t{h} * head_dim;

  // The sequence of this row: the last s with query_starts[s] <= row. Every
  // thread computes the same values, so the early return below is uniform.
  int lo = 0;
  int hi = a.num_seqs;
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    if (a.query_starts[mid] <= row) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  const int s = lo;
  const int64_t first_row = a.query_starts[s];
  const int64_t end_row = a.query_starts[s + 1];
  const int64_t q_len = end_row - first_row;
  // Query row i of the sequence is at position kv_len - q_len + i and sees
  // keys 0..position.
  const int64_t n_keys = int64_t{a.kv_lens[s]} - q_len + (row - first_row) + 1;
  const int64_t capacity = int64_t{a.max_pages_per_seq} * a.page_size;
  if (row < first_row || row >= end_row || n_keys <= 0 || n_keys > capacity) {
    if (threadIdx.x == 0) atomicOr(a.error_word, kErrorAttentionLayout);
    for (int d = threadIdx.x; d < head_dim; d += kThreads) out[d] = 0.0f;
    return;
  }

  const float* q_src = a.qkv + row * 3 * a.num_heads * head_dim + int64_t{h} * 3 * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += kThreads) q[d] = q_src[d];
  const int32_t* pages = a.page_table + int64_t{s} * a.max_pages_per_seq;
  const int64_t page_stride = int64_t{a.num_heads} * a.page_size * head_dim;
  const int64_t head_offset = int64_t{h} * a.page_size * head_dim;

  float running_max = -INFINITY;
  float running_sum = 0.0f;
  float acc[kMaxDimsPerThread];
#pragma unroll
  for (int i = 0; i < kMaxDimsPerThread; ++i) acc[i] = 0.0f;

  for (int64_t tile_start = 0; tile_start < n_keys; tile_start += kTile) {
    const int tile_keys = static_cast<int>(Min64(kTile, n_keys - tile_start));
    // 1. Where each key of the tile lives.
    if (threadIdx.x < tile_keys) {
      const int64_t key = tile_start + threadIdx.x;
      const int64_t page = pages[key / a.page_size];
      int64_t offset = -1;
      if (page >= 0 && page < a.num_pages) {
        offset = page * page_stride + head_offset + (key % a.page_size) * head_dim;
      } else {
        atomicOr(a.error_word, kErrorPageTable);
      }
      key_offset[threadIdx.x] = offset;
    }
    __syncthreads();  // also publishes q on the first tile
    // 2. Scores: one warp per key.
    for (int j = warp; j < tile_keys; j += kWarps) {
      const int64_t offset = key_offset[j];
      float partial = 0.0f;
      if (offset >= 0) {
        const KvT* key = k_cache + offset;
        for (int d = lane; d < head_dim; d += 32) partial += q[d] * KvToF32(key[d]);
      }
      partial = WarpAllReduce(partial, SumOp());
      if (lane == 0) probs[j] = offset >= 0 ? partial * a.scale : -INFINITY;
    }
    __syncthreads();
    // 3. Online softmax: every thread derives the same max and sum.
    float tile_max = -INFINITY;
    for (int j = 0; j < tile_keys; ++j) tile_max = fmaxf(tile_max, probs[j]);
    const float new_max = fmaxf(running_max, tile_max);
    const float correction = running_max == -INFINITY ? 0.0f : expf(running_max - new_max);
    __syncthreads();  // every thread has read the scores
    if (threadIdx.x < tile_keys) {
      probs[threadIdx.x] = new_max == -INFINITY ? 0.0f : expf(probs[threadIdx.x] - new_max);
    }
    __syncthreads();
    float tile_sum = 0.0f;
    for (int j = 0; j < tile_keys; ++j) tile_sum += probs[j];
    running_sum = running_sum * correction + tile_sum;
    running_max = new_max;
    // 4. acc = acc * correction + sum_j p_j v_j for this thread's dims.
#pragma unroll
    for (int i = 0; i < kMaxDimsPerThread; ++i) {
      const int d = threadIdx.x + i * kThreads;
      if (d < head_dim) {
        float value = acc[i] * correction;
        for (int j = 0; j < tile_keys; ++j) {
          const int64_t offset = key_offset[j];
          if (offset >= 0) value += probs[j] * KvToF32(v_cache[offset + d]);
        }
        acc[i] = value;
      }
    }
    __syncthreads();  // before the next tile overwrites key_offset and probs
  }
  const float inv_sum = running_sum > 0.0f ? 1.0f / running_sum : 0.0f;
#pragma unroll
  for (int i = 0; i < kMaxDimsPerThread; ++i) {
    const int d = threadIdx.x + i * kThreads;
    if (d < head_dim) out[d] = acc[i] * inv_sum;
  }
}

}  // namespace

cudaError_t LaunchPagedAttention(const PagedAttentionArgs& args, cudaStream_t stream) {
  if (args.rows <= 0 || args.num_heads <= 0 || args.head_dim <= 0) return cudaSuccess;
  if (args.head_dim > kMaxAttentionHeadDim || args.num_seqs <= 0 || args.page_size <= 0 ||
      args.rows * args.num_heads > 0x7fffffff) {
    return cudaErrorInvalidValue;
  }
  constexpr int kAppendThreads = 256;
  const int64_t append_items = args.rows * args.num_heads * args.head_dim;
  const unsigned append_blocks = GridStrideBlocks(append_items, kAppendThreads);
  if (args.kv_f16) {
    KvAppendKernel<__half><<<append_blocks, kAppendThreads, 0, stream>>>(args);
  } else {
    KvAppendKernel<float><<<append_blocks, kAppendThreads, 0, stream>>>(args);
  }
  cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) return status;
  const size_t shared_bytes = (static_cast<size_t>(args.head_dim) + kTile) * sizeof(float);
  const unsigned blocks = static_cast<unsigned>(args.rows * args.num_heads);
  if (args.kv_f16) {
    PagedAttentionKernel<__half><<<blocks, kThreads, shared_bytes, stream>>>(args);
  } else {
    PagedAttentionKernel<float><<<blocks, kThreads, shared_bytes, stream>>>(args);
  }
  return cudaGetLastError();
}

}  // namespace blockserve::cuda
