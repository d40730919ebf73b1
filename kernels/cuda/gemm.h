// CublasGemm: the GEMM behind the CUDA backend's MatMul, through cuBLAS.
//
// Computes y[m, n] (F32, row-major) = x[m, k] * w[n, k]^T (+ y when
// accumulating), x and w both F32, both F16 or both BF16, with FP32
// accumulation (tensor cores for the 16-bit types; FP32 SIMT for F32, or
// TF32 tensor cores when allowed). Row-major y = x w^T is the column-major
// product y^T = w^T-as-stored x^T, so the call is GemmEx(T, N) on the
// buffers as they are, with no transposes in memory.
//
// Owns a cuBLAS handle bound to the backend's stream and a fixed workspace;
// cuBLAS itself is loaded on first use (cublas_library.h). Used by one
// thread at a time (the backend's).
#ifndef BLOCKSERVE_KERNELS_CUDA_GEMM_H_
#define BLOCKSERVE_KERNELS_CUDA_GEMM_H_

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/cublas_library.h"

namespace blockserve::cuda {

class CublasGemm {
 public:
  // `allow_tf32`: F32 GEMMs may use TF32 tensor cores (about 10 mantissa
  // bits on the inputs: faster, but no longer the CPU's F32 results).
  static absl::StatusOr<std::unique_ptr<CublasGemm>> Create(cudaStream_t stream, bool allow_tf32);
  ~CublasGemm();
  CublasGemm(const CublasGemm&) = delete;
  CublasGemm& operator=(const CublasGemm&) = delete;

  // `type` is the type of x and w: CUDA_R_32F, CUDA_R_16F or CUDA_R_16BF.
  // m, n, k >= 1 and below 2^31.
  absl::Status Run(const void* x, const void* w, cudaDataType_t type, int64_t m, int64_t n,
                   int64_t k, bool accumulate, float* y);

 private:
  CublasGemm() = default;

  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLAS's advice for Hopper

  const CublasLibrary* cublas_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  bool allow_tf32_ = false;
};

}  // namespace blockserve::cuda

#endif  // BLOCKSERVE_KERNELS_CUDA_GEMM_H_
