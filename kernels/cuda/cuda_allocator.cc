#include "kernels/cuda/cuda_allocator.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/scoped_device.h"
#include "shared/common/logging.h"

namespace blockserve::cuda {

CudaAllocator::CudaAllocator(int device, cudaStream_t stream, bool stream_ordered,
                             std::shared_ptr<ErrorState> errors)
    : device_(device),
      stream_ordered_(stream_ordered),
      errors_(std::move(errors)),
      stream_(stream) {}

absl::StatusOr<void*> CudaAllocator::Allocate(size_t bytes) {
  // Zero-byte tensors still get a distinct, valid pointer (as on the host).
  const size_t size = bytes == 0 ? 256 : bytes;
  ScopedDevice scoped(device_);
  absl::MutexLock lock(&mutex_);
  const bool async = stream_ordered_ && !retired_;
  void* ptr = nullptr;
  const cudaError_t error = async ? cudaMallocAsync(&ptr, size, stream_) : cudaMalloc(&ptr, size);
  if (error != cudaSuccess) {
    cudaGetLastError();  // a failed allocation must not be blamed on the next kernel launch
    const absl::Status status =
        CudaStatus(error, async ? "cudaMallocAsync" : "cudaMalloc", __FILE__, __LINE__);
    return absl::Status(
        status.code(),
        absl::StrCat("allocating ", bytes, " bytes on cuda:", device_, ": ", status.message()));
  }
  ++outstanding_;
  return ptr;
}

void CudaAllocator::Free(void* ptr) {
  if (ptr == nullptr) return;
  ScopedDevice scoped(device_);
  bool delete_now = false;
  {
    absl::MutexLock lock(&mutex_);
    if (stream_ordered_ && !retired_) {
      BS_CUDA_OK(*errors_, cudaFreeAsync(ptr, stream_));
    } else {
      const absl::Status status = CudaStatus(cudaFree(ptr), "cudaFree", __FILE__, __LINE__);
      if (!status.ok()) {
        if (retired_) {
          LOG(ERROR) << "CUDA allocator of a destroyed backend: " << status;
        } else {
          errors_->Record(status);
        }
      }
    }
    --outstanding_;
    delete_now = retired_ && outstanding_ == 0;
  }
  if (delete_now) delete this;
}

int64_t CudaAllocator::outstanding() const {
  absl::MutexLock lock(&mutex_);
  return outstanding_;
}

void CudaAllocator::Retire(std::unique_ptr<CudaAllocator> allocator) {
  CudaAllocator* self = allocator.release();
  if (self == nullptr) return;
  bool delete_now = false;
  {
    absl::MutexLock lock(&self->mutex_);
    self->retired_ = true;
    self->stream_ = nullptr;
    delete_now = self->outstanding_ == 0;
    if (!delete_now) {
      LOG(WARNING) << "CUDA backend destroyed with " << self->outstanding_
                   << " device allocations still alive; they are freed synchronously later";
    }
  }
  if (delete_now) delete self;
}

}  // namespace blockserve::cuda
