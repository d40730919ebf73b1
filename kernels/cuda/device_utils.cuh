// Device helpers shared by the CUDA kernels: launch geometry, warp and block
// reductions, a block-wide prefix sum and the "first index where a running
// sum crosses a threshold" search that sampling is built on.
//
// Block-level helpers need blockDim.x to be a multiple of 32 (at most 1024),
// must be called by every thread of the block (they contain
// __syncthreads()), and return the same value to every thread, bit for bit:
// every thread combines the per-warp partial results in the same order.
// Each takes a __shared__ scratch array of 32 elements owned by the caller;
// a helper may reuse the scratch of an earlier call (it synchronizes first).
#ifndef BLOCKSERVE_KERNELS_CUDA_DEVICE_UTILS_CUH_
#define BLOCKSERVE_KERNELS_CUDA_DEVICE_UTILS_CUH_

#include <cuda_runtime.h>

#include <cstdint>

namespace blockserve::cuda {

constexpr unsigned kFullWarpMask = 0xffffffffu;

// Blocks for a grid-stride loop over `n` items: enough to fill the GPU, never
// more than needed, never zero (callers return early for n == 0).
inline unsigned GridStrideBlocks(int64_t n, int threads) {
  constexpr int64_t kMaxBlocks = 65536;
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks);
}

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct MinOp {
  __device__ long long operator()(long long a, long long b) const { return a < b ? a : b; }
};

// Reduces `value` over the warp with a commutative `op`; every lane gets the
// same result (a butterfly: lane i and its partner compute op(a, b) and
// op(b, a), equal for commutative ops, IEEE addition included).
template <typename T, typename Op>
__device__ T WarpAllReduce(T value, Op op) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    value = op(value, __shfl_xor_sync(kFullWarpMask, value, offset));
  }
  return value;
}

template <typename T, typename Op>
__device__ T BlockAllReduce(T value, Op op, T* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  value = WarpAllReduce(value, op);
  __syncthreads();  // a previous user of scratch has finished reading it
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  T result = scratch[0];
  for (int w = 1; w < num_warps; ++w) result = op(result, scratch[w]);
  return result;
}

// The best (largest value, then lowest id) of the block's candidates.
struct ValueId {
  float value;
  int32_t id;
};

__device__ inline ValueId BetterOf(ValueId a, ValueId b) {
  return (b.value > a.value || (b.value == a.value && b.id < a.id)) ? b : a;
}

__device__ inline ValueId BlockArgmax(ValueId value, ValueId* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  for (int offset = 16; offset > 0; offset >>= 1) {
    ValueId other;
    other.value = __shfl_xor_sync(kFullWarpMask, value.value, offset);
    other.id = __shfl_xor_sync(kFullWarpMask, value.id, offset);
    value = BetterOf(value, other);
  }
  __syncthreads();
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  ValueId result = scratch[0];
  for (int w = 1; w < num_warps; ++w) result = BetterOf(result, scratch[w]);
  return result;
}

// Exclusive prefix sum of `value` over the threads of the block in thread
// order; *total receives the sum over the block.
__device__ inline double BlockExclusiveSum(double value, double* scratch, double* total) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_warps = blockDim.x >> 5;
  double inclusive = value;
  for (int offset = 1; offset < 32; offset <<= 1) {
    const double up = __shfl_up_sync(kFullWarpMask, inclusive, offset);
    if (lane >= offset) inclusive += up;
  }
  double exclusive = __shfl_up_sync(kFullWarpMask, inclusive, 1);
  if (lane == 0) exclusive = 0.0;
  __syncthreads();
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  double before_warp = 0.0;
  double sum = 0.0;
  for (int w = 0; w < num_warps; ++w) {
    if (w < warp) before_warp += scratch[w];
    sum += scratch[w];
  }
  *total = sum;
  return before_warp + exclusive;
}

struct Crossing {
  int64_t index;  // n when the running sum never crosses
  double total;   // sum of all n weights
};

// Scratch of FirstCrossing, one per block (in __shared__ memory).
struct CrossingScratch {
  double sums[32];
  long long indices[32];
};

// The smallest i < n at which w(0) + ... + w(i) exceeds (strict) or reaches
// (!strict) threshold_of(total), where total = w(0) + ... + w(n - 1).
// Each thread sums a contiguous chunk of the indices; a block prefix sum of
// the chunk sums gives each chunk its starting mass, and each thread walks
// its chunk. Sums are in double (as the CPU reference's sequential walk), in
// a different association, so only a draw within double rounding of a
// boundary can land differently.
template <typename WeightFn, typename ThresholdFn>
__device__ Crossing FirstCrossing(int64_t n, WeightFn weight, ThresholdFn threshold_of, bool strict,
                                  CrossingScratch& scratch) {
  const int64_t threads = blockDim.x;
  const int64_t chunk = (n + threads - 1) / threads;
  const int64_t first = static_cast<int64_t>(threadIdx.x) * chunk;
  const int64_t begin = first < n ? first : n;
  const int64_t end = begin + chunk < n ? begin + chunk : n;
  double local = 0.0;
  for (int64_t i = begin; i < end; ++i) local += weight(i);
  double total = 0.0;
  double running = BlockExclusiveSum(local, scratch.sums, &total);
  const double threshold = threshold_of(total);
  long long found = n;
  for (int64_t i = begin; i < end; ++i) {
    running += weight(i);
    if (strict ? running > threshold : running >= threshold) {
      found = i;
      break;
    }
  }
  found = BlockAllReduce(found, MinOp(), scratch.indices);
  return {static_cast<int64_t>(found), total};
}

}  // namespace blockserve::cuda

#endif  // BLOCKSERVE_KERNELS_CUDA_DEVICE_UTILS_CUH_
