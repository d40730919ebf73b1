// The device-side error word: reset by a one-thread kernel, which doubles as
// the start-up probe that this binary carries kernels for the device.
#include "kernels/cuda/cuda_kernels.h"

namespace blockserve::cuda {
namespace {

__global__ void ResetErrorWordKernel(uint32_t* error_word) { *error_word = 0; }

}  // namespace

cudaError_t LaunchResetErrorWord(uint32_t* error_word, cudaStream_t stream) {
  ResetErrorWordKernel<<<1, 1, 0, stream>>>(error_word);
  return cudaGetLastError();
}

}  // namespace blockserve::cuda
