// LayerNorm on the GPU: one block per row, mean and variance in double (as
// the CPU reference, kernels/cpu/layer_norm.cc), two passes over the row.
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_utils.cuh"

namespace blockserve::cuda {
namespace {

constexpr int kThreads = 256;

// In place (y == x) is safe: every element is read and written by the same
// thread, and all reads of the statistics passes end at a block barrier
// (inside BlockAllReduce) before the first write.
__global__ void __launch_bounds__(kThreads)
    LayerNormKernel(const float* x, const float* __restrict__ gamma, const float* __restrict__ beta,
                    float eps, int64_t d, float* y) {
  __shared__ double scratch[32];
  const int64_t row = blockIdx.x;
  const float* in = x + row * d;
  float* out = y + row * d;
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) sum += in[i];
  const double mean = BlockAllReduce(sum, SumOp(), scratch) / static_cast<double>(d);
  double squares = 0.0;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const double centered = in[i] - mean;
    squares += centered * centered;
  }
  const double variance = BlockAllReduce(squares, SumOp(), scratch) / static_cast<double>(d);
  const float inv_std = static_cast<float>(1.0 / sqrt(variance + static_cast<double>(eps)));
  const float mean_f = static_cast<float>(mean);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    out[i] = (in[i] - mean_f) * inv_std * gamma[i] + beta[i];
  }
}

}  // namespace

cudaError_t LaunchLayerNorm(const float* x, const float* gamma, const float* beta, float eps,
                            int64_t m, int64_t d, float* y, cudaStream_t stream) {
  if (m <= 0 || d <= 0) return cudaSuccess;
  if (m > 0x7fffffff) return cudaErrorInvalidValue;
  LayerNormKernel<<<static_cast<unsigned>(m), kThreads, 0, stream>>>(x, gamma, beta, eps, d, y);
  return cudaGetLastError();
}

}  // namespace blockserve::cuda
