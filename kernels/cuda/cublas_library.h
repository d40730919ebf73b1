// CublasLibrary: the cuBLAS entry points the CUDA backend uses, loaded with
// dlopen when the first CUDA backend is created.
//
// Linking libcublas directly would load it and its 540 MB libcublasLt into
// every process that links the kernels, GPU or not: about 0.8 s and 200 MB
// resident at start-up, paid by every CPU-only service, tool and test
// process. The CUDA runtime itself (libcudart, small) is linked normally.
// The library is loaded once per process and never unloaded. Thread-safe.
#ifndef BLOCKSERVE_KERNELS_CUDA_CUBLAS_LIBRARY_H_
#define BLOCKSERVE_KERNELS_CUDA_CUBLAS_LIBRARY_H_

#include <cublas_v2.h>

#include "absl/status/statusor.h"

namespace blockserve::cuda {

// cublasGemmEx (the int-sized one; C++ callers also see an overload).
using CublasGemmExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                          int, int, const void*, const void*, cudaDataType, int,
                                          const void*, cudaDataType, int, const void*, void*,
                                          cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
// Checks that the header declares exactly this signature (unevaluated: no link).
static_assert(sizeof(static_cast<CublasGemmExFn>(&cublasGemmEx)) > 0);

struct CublasLibrary {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetWorkspace_v2) set_workspace = nullptr;
  CublasGemmExFn gemm_ex = nullptr;
};

// Loads libcublas.so.<the major version built against> (from the library
// path, else from the toolkit's library directory found at build time).
// UNAVAILABLE with dlerror()'s reason when it cannot.
absl::StatusOr<const CublasLibrary*> LoadCublas();

}  // namespace blockserve::cuda

#endif  // BLOCKSERVE_KERNELS_CUDA_CUBLAS_LIBRARY_H_
