#include "kernels/cuda/cuda_error.h"

#include "absl/strings/str_cat.h"

namespace blockserve::cuda {

absl::Status CudaStatus(cudaError_t error, const char* call, const char* file, int line) {
  if (error == cudaSuccess) return absl::OkStatus();
  std::string message = absl::StrCat(call, " failed at ", file, ":", line, ": ",
                                     cudaGetErrorName(error), " (", cudaGetErrorString(error), ")");
  if (error == cudaErrorMemoryAllocation) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

absl::Status CublasStatus(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  std::string message = absl::StrCat(call, " failed at ", file, ":", line, ": ",
                                     cublasGetStatusName(status), " (",
                                     cublasGetStatusString(status), ")");
  if (status == CUBLAS_STATUS_ALLOC_FAILED) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

void ErrorState::Record(const absl::Status& status) {
  if (status.ok()) return;
  absl::MutexLock lock(&mutex_);
  if (first_error_.ok()) first_error_ = status;
}

absl::Status ErrorState::Take() {
  absl::MutexLock lock(&mutex_);
  absl::Status status = std::move(first_error_);
  first_error_ = absl::OkStatus();
  return status;
}

bool ErrorState::has_error() const {
  absl::MutexLock lock(&mutex_);
  return !first_error_.ok();
}

}  // namespace blockserve::cuda
