// NeoX rotary embedding on the GPU: one thread per rotated pair (row, head,
// q or k, i < rotary_dims / 2). The inverse frequencies come from the host,
// computed exactly as the CPU reference computes them; angles are float32
// products and cosf/sinf (no fast-math), as in kernels/cpu/rotary.cc.
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_utils.cuh"

namespace blockserve::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void RotaryKernel(float* __restrict__ qkv, int64_t m,
                             const int32_t* __restrict__ positions,
                             const float* __restrict__ inv_freq, int num_heads, int head_dim,
                             int half) {
  // Items are (row, head, part, i) with i fastest.
  const int64_t total = m * num_heads * 2 * half;
  const int64_t width = int64_t{3} * num_heads * head_dim;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += stride) {
    const int i = static_cast<int>(e % half);
    const int64_t rest = e / half;
    const int part = static_cast<int>(rest % 2);  // 0: q, 1: k
    const int64_t row_head = rest / 2;
    const int h = static_cast<int>(row_head % num_heads);
    const int64_t row = row_head / num_heads;
    const float angle = static_cast<float>(positions[row]) * inv_freq[i];
    const float c = cosf(angle);
    const float s = sinf(angle);
    float* v = qkv + row * width + (int64_t{h} * 3 + part) * head_dim;
    const float x1 = v[i];
    const float x2 = v[i + half];
    v[i] = x1 * c - x2 * s;
    v[i + half] = x2 * c + x1 * s;
  }
}

}  // namespace

cudaError_t LaunchRotary(float* qkv, int64_t m, const int32_t* positions, const float* inv_freq,
                         int num_heads, int head_dim, int rotary_dims, cudaStream_t stream) {
  const int half = rotary_dims / 2;
  if (m <= 0 || half <= 0 || num_heads <= 0) return cudaSuccess;
  const int64_t total = m * num_heads * 2 * half;
  RotaryKernel<<<GridStrideBlocks(total, kThreads), kThreads, 0, stream>>>(
      qkv, m, positions, inv_freq, num_heads, head_dim, half);
  return cudaGetLastError();
}

}  // namespace blockserve::cuda
