// ScopedDevice: makes a CUDA device current on the calling thread for a
// scope, and restores the previous one after.
//
// A Backend may be driven from different threads over its life (the engine
// thread, a test's main thread) and Tensors may be freed from any thread, so
// every entry point of the CUDA backend selects its device first. Internal to
// kernels/cuda; thread-compatible (acts on the calling thread only).
#ifndef BLOCKSERVE_KERNELS_CUDA_SCOPED_DEVICE_H_
#define BLOCKSERVE_KERNELS_CUDA_SCOPED_DEVICE_H_

#include <cuda_runtime_api.h>

namespace blockserve::cuda {

class ScopedDevice {
 public:
  explicit ScopedDevice(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    if (previous_ != device) {
      status_ = cudaSetDevice(device);
      restore_ = status_ == cudaSuccess && previous_ >= 0;
    }
  }
  ~ScopedDevice() {
    if (restore_) cudaSetDevice(previous_);
  }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

  // The result of cudaSetDevice (cudaSuccess when nothing had to change).
  cudaError_t status() const { return status_; }

 private:
  int previous_ = -1;
  bool restore_ = false;
  cudaError_t status_ = cudaSuccess;
};

}  // namespace blockserve::cuda

#endif  // BLOCKSERVE_KERNELS_CUDA_SCOPED_DEVICE_H_
