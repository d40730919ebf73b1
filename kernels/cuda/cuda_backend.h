// The CUDA backend: every op of kernels/backend.h on one NVIDIA GPU.
//
// Only the factory is public, and this header names no CUDA type, so code
// outside kernels/cuda (schedulers, caches, the tokenizer, their tests) never
// needs the CUDA headers. The implementation (cuda_backend.cc) keeps weights
// and activations in device memory, runs GEMMs through cuBLAS and the other
// ops as kernels of kernels/cuda/*.cu, all on one stream per backend;
// docs/cuda.md describes the design. The returned Backend follows the
// threading rules of kernels/backend.h.
#ifndef BLOCKSERVE_KERNELS_CUDA_CUDA_BACKEND_H_
#define BLOCKSERVE_KERNELS_CUDA_CUDA_BACKEND_H_

#include <memory>

#include "absl/status/statusor.h"
#include "kernels/backend.h"

namespace blockserve {

// A backend on CUDA device `ordinal`. UNAVAILABLE, with the driver's reason,
// when there is no usable CUDA driver or device (as on CPU-only machines) or
// when this build has no kernels for the device's architecture;
// INVALID_ARGUMENT when `ordinal` names no device.
absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(int ordinal);

}  // namespace blockserve

#endif  // BLOCKSERVE_KERNELS_CUDA_CUDA_BACKEND_H_
