// The elementwise halves of MatMul around the cuBLAS GEMM (gemm.cc): the
// conversion of F32 activations to the weights' 16-bit type before it, and
// the fused bias + exact GELU epilogue after it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_utils.cuh"

namespace blockserve::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void ConvertToBf16Kernel(const float* __restrict__ x, int64_t count,
                                    uint16_t* __restrict__ out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    out[i] = __bfloat16_as_ushort(__float2bfloat16_rn(x[i]));
  }
}

__global__ void ConvertToF16Kernel(const float* __restrict__ x, int64_t count,
                                   uint16_t* __restrict__ out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    out[i] = __half_as_ushort(__float2half_rn(x[i]));
  }
}

// The same formula as the CPU reference (kernels/cpu/matmul.cc).
__device__ inline float GeluExact(float x) {
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
}

__global__ void BiasActivationKernel(float* __restrict__ y, const float* __restrict__ bias,
                                     int64_t m, int64_t n, bool gelu) {
  const int64_t total = m * n;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    float value = y[i];
    if (bias != nullptr) value += bias[i % n];
    if (gelu) value = GeluExact(value);
    y[i] = value;
  }
}

}  // namespace

cudaError_t LaunchConvertF32To16(const float* x, int64_t count, ElementType type, void* out,
                                 cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  const unsigned blocks = GridStrideBlocks(count, kThreads);
  if (type == ElementType::kBF16) {
    ConvertToBf16Kernel<<<blocks, kThreads, 0, stream>>>(x, count, static_cast<uint16_t*>(out));
  } else if (type == ElementType::kF16) {
    ConvertToF16Kernel<<<blocks, kThreads, 0, stream>>>(x, count, static_cast<uint16_t*>(out));
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t LaunchBiasActivation(float* y, const float* bias, int64_t m, int64_t n, bool gelu,
                                 cudaStream_t stream) {
  if (m <= 0 || n <= 0 || (bias == nullptr && !gelu)) return cudaSuccess;
  BiasActivationKernel<<<GridStrideBlocks(m * n, kThreads), kThreads, 0, stream>>>(y, bias, m, n,
                                                                                   gelu);
  return cudaGetLastError();
}

}  // namespace blockserve::cuda
