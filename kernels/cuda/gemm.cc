#include "kernels/cuda/gemm.h"

#include <climits>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_error.h"
#include "shared/common/status_macros.h"

namespace blockserve::cuda {

absl::StatusOr<std::unique_ptr<CublasGemm>> CublasGemm::Create(cudaStream_t stream,
                                                               bool allow_tf32) {
  std::unique_ptr<CublasGemm> gemm(new CublasGemm());
  gemm->allow_tf32_ = allow_tf32;
  ASSIGN_OR_RETURN(gemm->cublas_, LoadCublas());
  const CublasLibrary& cublas = *gemm->cublas_;
  RETURN_IF_ERROR(CublasStatus(cublas.create(&gemm->handle_), "cublasCreate", __FILE__, __LINE__));
  RETURN_IF_ERROR(CublasStatus(cublas.set_stream(gemm->handle_, stream), "cublasSetStream",
                               __FILE__, __LINE__));
  RETURN_IF_ERROR(
      CudaStatus(cudaMalloc(&gemm->workspace_, kWorkspaceBytes), "cudaMalloc", __FILE__, __LINE__));
  RETURN_IF_ERROR(
      CublasStatus(cublas.set_workspace(gemm->handle_, gemm->workspace_, kWorkspaceBytes),
                   "cublasSetWorkspace", __FILE__, __LINE__));
  return gemm;
}

CublasGemm::~CublasGemm() {
  // The owner has synchronized the stream: no GEMM is still using these.
  if (handle_ != nullptr) cublas_->destroy(handle_);
  if (workspace_ != nullptr) cudaFree(workspace_);
}

absl::Status CublasGemm::Run(const void* x, const void* w, cudaDataType_t type, int64_t m,
                             int64_t n, int64_t k, bool accumulate, float* y) {
  if (m < 1 || n < 1 || k < 1 || m > INT_MAX || n > INT_MAX || k > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("GEMM of shape m=", m, " n=", n, " k=", k, " is outside cuBLAS's int range"));
  }
  const float alpha = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  const cublasComputeType_t compute =
      type == CUDA_R_32F && allow_tf32_ ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  // Column-major view: C (n x m, ldc n) = op(A) (n x k) * B (k x m), where
  // A is w seen as a k x n matrix (lda k), transposed, and B is x seen as a
  // k x m matrix (ldb k).
  return CublasStatus(
      cublas_->gemm_ex(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                       static_cast<int>(k), &alpha, w, type, static_cast<int>(k), x, type,
                       static_cast<int>(k), &beta, y, CUDA_R_32F, static_cast<int>(n), compute,
                       CUBLAS_GEMM_DEFAULT),
      "cublasGemmEx", __FILE__, __LINE__);
}

}  // namespace blockserve::cuda
