// CudaAllocator: device memory for the Tensors of one CudaBackend, ordered on
// the backend's stream.
//
// Allocate() is cudaMallocAsync and Free() cudaFreeAsync on the backend's
// stream (from the device's default memory pool, which the backend keeps from
// releasing memory back to the driver, so the per-forward workspaces of the
// model are recycled without driver calls). Freeing is therefore ordered
// after every op already enqueued: the model may drop a Tensor right after
// enqueuing the ops that read it. On devices without memory pools it falls
// back to cudaMalloc / cudaFree (cudaFree waits for the device).
//
// Lifetime: Tensors keep a raw pointer to their allocator, and may outlive
// the backend. The backend therefore hands its allocator to Retire() instead
// of deleting it: with allocations still out, the allocator switches to
// synchronous cudaFree (the stream is gone) and deletes itself when the last
// one is freed. Thread-safe.
#ifndef BLOCKSERVE_KERNELS_CUDA_CUDA_ALLOCATOR_H_
#define BLOCKSERVE_KERNELS_CUDA_CUDA_ALLOCATOR_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "kernels/cuda/cuda_error.h"
#include "shared/tensor/tensor.h"

namespace blockserve::cuda {

class CudaAllocator final : public Allocator {
 public:
  // `stream_ordered`: whether the device supports cudaMallocAsync.
  // Failures of Free() are recorded in `errors`.
  CudaAllocator(int device, cudaStream_t stream, bool stream_ordered,
                std::shared_ptr<ErrorState> errors);
  CudaAllocator(const CudaAllocator&) = delete;
  CudaAllocator& operator=(const CudaAllocator&) = delete;

  DeviceKind device() const override { return DeviceKind::kCuda; }
  absl::StatusOr<void*> Allocate(size_t bytes) override;
  void Free(void* ptr) override;

  // Allocations not yet freed.
  int64_t outstanding() const;

  // Ends the owner's use of `allocator` (see the lifetime note above). The
  // caller must have synchronized the stream, which it may destroy after.
  static void Retire(std::unique_ptr<CudaAllocator> allocator);

 private:
  ~CudaAllocator() override = default;
  friend struct std::default_delete<CudaAllocator>;

  const int device_;
  const bool stream_ordered_;
  const std::shared_ptr<ErrorState> errors_;
  mutable absl::Mutex mutex_;
  cudaStream_t stream_ ABSL_GUARDED_BY(mutex_);  // null once retired
  int64_t outstanding_ ABSL_GUARDED_BY(mutex_) = 0;
  bool retired_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace blockserve::cuda

#endif  // BLOCKSERVE_KERNELS_CUDA_CUDA_ALLOCATOR_H_
