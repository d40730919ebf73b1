// CopyRows on the GPU: a grid-stride loop over the (row, column) elements of
// the copied rows, converting 16-bit sources to F32 exactly.
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/device_utils.cuh"

namespace blockserve::cuda {
namespace {

constexpr int kThreads = 256;

struct Bf16Source {
  const uint16_t* data;
  __device__ float operator[](int64_t i) const {
    return __uint_as_float(static_cast<uint32_t>(data[i]) << 16);
  }
};

struct F16Source {
  const uint16_t* data;
  __device__ float operator[](int64_t i) const { return __half2float(__ushort_as_half(data[i])); }
};

struct F32Source {
  const float* data;
  __device__ float operator[](int64_t i) const { return data[i]; }
};

template <typename Source>
__global__ void CopyRowsKernel(Source src, int64_t src_count, int64_t width,
                               const int32_t* __restrict__ src_rows, int64_t n,
                               float* __restrict__ dst, int64_t dst_count,
                               const int32_t* __restrict__ dst_rows, uint32_t* error_word) {
  const int64_t total = n * width;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += stride) {
    const int64_t i = e / width;
    const int64_t c = e - i * width;
    const int64_t from = src_rows[i];
    const int64_t to = dst_rows == nullptr ? i : dst_rows[i];
    if (from < 0 || from >= src_count || to < 0 || to >= dst_count) {
      atomicOr(error_word, kErrorCopyRowsIndex);
      continue;
    }
    dst[to * width + c] = src[from * width + c];
  }
}

}  // namespace

cudaError_t LaunchCopyRows(const void* src, ElementType src_type, int64_t src_count, int64_t width,
                           const int32_t* src_rows, int64_t n, float* dst, int64_t dst_count,
                           const int32_t* dst_rows, uint32_t* error_word, cudaStream_t stream) {
  if (n <= 0 || width <= 0) return cudaSuccess;
  const unsigned blocks = GridStrideBlocks(n * width, kThreads);
  switch (src_type) {
    case ElementType::kF32:
      CopyRowsKernel<<<blocks, kThreads, 0, stream>>>(F32Source{static_cast<const float*>(src)},
                                                      src_count, width, src_rows, n, dst, dst_count,
                                                      dst_rows, error_word);
      break;
    case ElementType::kBF16:
      CopyRowsKernel<<<blocks, kThreads, 0, stream>>>(Bf16Source{static_cast<const uint16_t*>(src)},
                                                      src_count, width, src_rows, n, dst, dst_count,
                                                      dst_rows, error_word);
      break;
    case ElementType::kF16:
      CopyRowsKernel<<<blocks, kThreads, 0, stream>>>(F16Source{static_cast<const uint16_t*>(src)},
                                                      src_count, width, src_rows, n, dst, dst_count,
                                                      dst_rows, error_word);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace blockserve::cuda
