// Sticky error state of the CUDA backend, and CUDA / cuBLAS status
// conversion to absl::Status.
//
// Backend ops return nothing (kernels/backend.h): a failing CUDA or cuBLAS
// call inside an op is recorded here, with the call, file:line and the
// driver's error string, and the first error since the last Synchronize()
// is what Synchronize() returns. Internal to kernels/cuda. Thread-safe (the
// allocator may record from whichever thread drops the last Tensor view).
#ifndef BLOCKSERVE_KERNELS_CUDA_CUDA_ERROR_H_
#define BLOCKSERVE_KERNELS_CUDA_CUDA_ERROR_H_

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace blockserve::cuda {

// OK for cudaSuccess; else RESOURCE_EXHAUSTED for out-of-memory errors and
// INTERNAL for the rest, naming `call`, `file`:`line` and the CUDA error.
absl::Status CudaStatus(cudaError_t error, const char* call, const char* file, int line);
absl::Status CublasStatus(cublasStatus_t status, const char* call, const char* file, int line);

class ErrorState {
 public:
  // Keeps `status` if it is the first error since the last Take().
  void Record(const absl::Status& status);
  // Returns the first recorded error (or OK) and clears it.
  absl::Status Take();
  bool has_error() const;

 private:
  mutable absl::Mutex mutex_;
  absl::Status first_error_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace blockserve::cuda

// Records a failing CUDA runtime call in `errors` (an ErrorState&); evaluates
// to true when the call succeeded.
#define BS_CUDA_OK(errors, call)     \
  ::blockserve::cuda::RecordIfError( \
      (errors), ::blockserve::cuda::CudaStatus((call), #call, __FILE__, __LINE__))
#define BS_CUBLAS_OK(errors, call)   \
  ::blockserve::cuda::RecordIfError( \
      (errors), ::blockserve::cuda::CublasStatus((call), #call, __FILE__, __LINE__))

namespace blockserve::cuda {
inline bool RecordIfError(ErrorState& errors, const absl::Status& status) {
  if (status.ok()) return true;
  errors.Record(status);
  return false;
}
}  // namespace blockserve::cuda

#endif  // BLOCKSERVE_KERNELS_CUDA_CUDA_ERROR_H_
