// Token sampling on the GPU, following the CPU reference rules
// (kernels/cpu/sampling.cc) step for step:
//  - greedy: the largest logit, lowest id on ties;
//  - weights w_i = expf((logit_i - max_logit) * (1.0f / temperature)) in
//    float, summed in double;
//  - no cut: the first id (in id order) at which the running mass exceeds
//    u * total;
//  - a top-k and/or top-p cut: candidates sorted by (logit desc, id asc)
//    (a stable segmented radix sort of (logit, id) pairs), the first k of
//    them, then the shortest prefix whose mass reaches top_p * total, then
//    the first candidate (in sorted order) at which the running mass
//    exceeds u * (mass of the kept candidates);
//  - the log-probability of the token under the unmodified distribution:
//    (logit - max) - float(log(sum_i exp(logit_i - max))).
// The draw u comes from the host (SamplingDraw(seed, position)), so it is
// the CPU's, bit for bit. Running sums are in double in a block-parallel
// association (device_utils.cuh, FirstCrossing).
#include <climits>
#include <cmath>
#include <cub/device/device_segmented_radix_sort.cuh>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_utils.cuh"

namespace blockserve::cuda {
namespace {

constexpr int kThreads = 512;

__global__ void __launch_bounds__(kThreads)
    SampleRowsKernel(const float* __restrict__ logits, int64_t v,
                     const SampleRowParams* __restrict__ params, int32_t* __restrict__ tokens,
                     float* __restrict__ logprobs, float* __restrict__ row_max,
                     float* __restrict__ row_log_sum) {
  __shared__ ValueId best_scratch[32];
  __shared__ double sum_scratch[32];
  __shared__ CrossingScratch crossing_scratch;
  const int64_t r = blockIdx.x;
  const float* row = logits + r * v;

  ValueId best{-INFINITY, INT_MAX};
  for (int64_t i = threadIdx.x; i < v; i += blockDim.x) {
    best = BetterOf(best, ValueId{row[i], static_cast<int32_t>(i)});
  }
  best = BlockArgmax(best, best_scratch);
  const float max_logit = best.value;
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < v; i += blockDim.x) sum += expf(row[i] - max_logit);
  sum = BlockAllReduce(sum, SumOp(), sum_scratch);
  const float log_sum = static_cast<float>(log(sum));
  if (threadIdx.x == 0) {
    row_max[r] = max_logit;
    row_log_sum[r] = log_sum;
  }
  const SampleRowParams p = params[r];
  if (p.mode == SampleMode::kSorted) return;  // the whole block: p is the same for all threads

  int64_t token = best.id;
  if (p.mode == SampleMode::kPlain) {
    const float inv_t = p.inv_temperature;
    const double u = p.draw;
    auto weight = [&](int64_t i) {
      return static_cast<double>(expf((row[i] - max_logit) * inv_t));
    };
    const Crossing crossing = FirstCrossing(
        v, weight, [u](double total) { return u * total; }, /*strict=*/true, crossing_scratch);
    token = crossing.index < v ? crossing.index : v - 1;
  }
  if (threadIdx.x == 0) {
    tokens[r] = static_cast<int32_t>(token);
    logprobs[r] = (row[token] - max_logit) - log_sum;
  }
}

__global__ void GatherSortInputKernel(const float* __restrict__ logits, int64_t v,
                                      const int32_t* __restrict__ rows, int count,
                                      float* __restrict__ keys, int32_t* __restrict__ ids,
                                      int32_t* __restrict__ offsets) {
  const int64_t total = int64_t{count} * v;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += stride) {
    const int64_t g = e / v;
    const int64_t i = e - g * v;
    keys[e] = logits[int64_t{rows[g]} * v + i];
    ids[e] = static_cast<int32_t>(i);
    if (i == 0) offsets[g] = static_cast<int32_t>(e);
    if (e == total - 1) offsets[count] = static_cast<int32_t>(total);
  }
}

__global__ void __launch_bounds__(kThreads)
    SampleSortedRowsKernel(const float* __restrict__ logits, int64_t v,
                           const SampleRowParams* __restrict__ params,
                           const int32_t* __restrict__ rows, const float* __restrict__ sorted_keys,
                           const int32_t* __restrict__ sorted_ids,
                           const float* __restrict__ row_max, const float* __restrict__ row_log_sum,
                           int32_t* __restrict__ tokens, float* __restrict__ logprobs) {
  __shared__ CrossingScratch crossing_scratch;
  const int64_t g = blockIdx.x;
  const int64_t r = rows[g];
  const float* keys = sorted_keys + g * v;
  const int32_t* ids = sorted_ids + g * v;
  const SampleRowParams p = params[r];
  const float max_logit = row_max[r];
  const float inv_t = p.inv_temperature;
  auto weight = [&](int64_t i) { return static_cast<double>(expf((keys[i] - max_logit) * inv_t)); };

  // The top-k cut keeps the first k sorted candidates.
  int64_t keep = (p.top_k > 0 && p.top_k < v) ? p.top_k : v;
  if (p.cut_p != 0) {
    // The shortest prefix whose mass reaches top_p of the candidates' mass.
    const double top_p = p.top_p;
    const Crossing nucleus = FirstCrossing(
        keep, weight, [top_p](double total) { return top_p * total; }, /*strict=*/false,
        crossing_scratch);
    if (nucleus.index < keep) keep = nucleus.index + 1;
    if (keep < 1) keep = 1;
  }
  const double u = p.draw;
  const Crossing draw = FirstCrossing(
      keep, weight, [u](double total) { return u * total; }, /*strict=*/true, crossing_scratch);
  const int64_t pick = draw.index < keep ? draw.index : keep - 1;
  if (threadIdx.x == 0) {
    const int32_t token = ids[pick];
    tokens[r] = token;
    logprobs[r] = (logits[r * v + token] - max_logit) - row_log_sum[r];
  }
}

}  // namespace

cudaError_t LaunchSampleRows(const float* logits, int64_t m, int64_t v,
                             const SampleRowParams* params, int32_t* tokens, float* logprobs,
                             float* row_max, float* row_log_sum, cudaStream_t stream) {
  if (m <= 0 || v <= 0) return cudaSuccess;
  if (m > 0x7fffffff || v > INT_MAX) return cudaErrorInvalidValue;
  SampleRowsKernel<<<static_cast<unsigned>(m), kThreads, 0, stream>>>(
      logits, v, params, tokens, logprobs, row_max, row_log_sum);
  return cudaGetLastError();
}

cudaError_t LaunchGatherSortInput(const float* logits, int64_t v, const int32_t* rows, int count,
                                  float* keys, int32_t* ids, int32_t* offsets,
                                  cudaStream_t stream) {
  if (count <= 0 || v <= 0) return cudaSuccess;
  if (int64_t{count} * v > INT_MAX) return cudaErrorInvalidValue;
  constexpr int kGatherThreads = 256;
  GatherSortInputKernel<<<GridStrideBlocks(int64_t{count} * v, kGatherThreads), kGatherThreads, 0,
                          stream>>>(logits, v, rows, count, keys, ids, offsets);
  return cudaGetLastError();
}

cudaError_t SortSegmentsDescending(void* temp, size_t* temp_bytes, const float* keys_in,
                                   float* keys_out, const int32_t* ids_in, int32_t* ids_out,
                                   int count, int64_t v, const int32_t* offsets,
                                   cudaStream_t stream) {
  if (int64_t{count} * v > INT_MAX) return cudaErrorInvalidValue;
  const int num_items = static_cast<int>(int64_t{count} * v);
  return cub::DeviceSegmentedRadixSort::SortPairsDescending(
      temp, *temp_bytes, keys_in, keys_out, ids_in, ids_out, num_items, count, offsets, offsets + 1,
      0, static_cast<int>(sizeof(float) * 8), stream);
}

cudaError_t LaunchSampleSortedRows(const float* logits, int64_t v, const SampleRowParams* params,
                                   const int32_t* rows, int count, const float* sorted_keys,
                                   const int32_t* sorted_ids, const float* row_max,
                                   const float* row_log_sum, int32_t* tokens, float* logprobs,
                                   cudaStream_t stream) {
  if (count <= 0 || v <= 0) return cudaSuccess;
  SampleSortedRowsKernel<<<static_cast<unsigned>(count), kThreads, 0, stream>>>(
      logits, v, params, rows, sorted_keys, sorted_ids, row_max, row_log_sum, tokens, logprobs);
  return cudaGetLastError();
}

}  // namespace blockserve::cuda
