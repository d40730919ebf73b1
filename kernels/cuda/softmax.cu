// Log-softmax and target log-probabilities on the GPU: one block per row;
// the max in float, the sum of float exponentials in double, and
// logsumexp = max + float(log(sum)), as the CPU reference
// (kernels/cpu/softmax.cc) computes it.
#include <cmath>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_utils.cuh"

namespace blockserve::cuda {
namespace {

constexpr int kThreads = 512;

__global__ void __launch_bounds__(kThreads)
    LogSoftmaxKernel(const float* logits, int64_t v, float* out,  // out may be logits
                     const int32_t* __restrict__ targets, float* __restrict__ target_out,
                     uint32_t* error_word) {
  __shared__ float max_scratch[32];
  __shared__ double sum_scratch[32];
  const int64_t r = blockIdx.x;
  const float* row = logits + r * v;
  float max_value = -INFINITY;
  for (int64_t i = threadIdx.x; i < v; i += blockDim.x) max_value = fmaxf(max_value, row[i]);
  max_value = BlockAllReduce(max_value, MaxOp(), max_scratch);
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < v; i += blockDim.x) sum += expf(row[i] - max_value);
  sum = BlockAllReduce(sum, SumOp(), sum_scratch);
  const float lse = max_value + static_cast<float>(log(sum));
  if (out != nullptr) {
    float* o = out + r * v;
    for (int64_t i = threadIdx.x; i < v; i += blockDim.x) o[i] = row[i] - lse;
  }
  if (targets != nullptr && threadIdx.x == 0) {
    const int64_t target = targets[r];
    if (target < 0 || target >= v) {
      atomicOr(error_word, kErrorTargetId);
      target_out[r] = NAN;
    } else {
      target_out[r] = row[target] - lse;
    }
  }
}

}  // namespace

cudaError_t LaunchLogSoftmax(const float* logits, int64_t m, int64_t v, float* out,
                             const int32_t* targets, float* target_out, uint32_t* error_word,
                             cudaStream_t stream) {
  if (m <= 0 || v <= 0) return cudaSuccess;
  if (m > 0x7fffffff) return cudaErrorInvalidValue;
  LogSoftmaxKernel<<<static_cast<unsigned>(m), kThreads, 0, stream>>>(logits, v, out, targets,
                                                                      target_out, error_word);
  return cudaGetLastError();
}

}  // namespace blockserve::cuda
