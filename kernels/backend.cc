#include "kernels/backend.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "kernels/cpu/cpu_backend.h"

#if BLOCKSERVE_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace blockserve {

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const BackendOptions& options) {
  if (options.device == "cpu") {
    return std::make_unique<CpuBackend>(options.threads);
  }
  if (options.device == "cuda" || absl::StartsWith(options.device, "cuda:")) {
    int ordinal = 0;
    if (options.device.size() > 5 && !absl::SimpleAtoi(options.device.substr(5), &ordinal)) {
      return absl::InvalidArgumentError(absl::StrCat("bad CUDA device '", options.device, "'"));
    }
#if BLOCKSERVE_WITH_CUDA
    return CreateCudaBackend(ordinal);
#else
    return absl::UnavailableError(
        "this build has no CUDA backend (configure with -DBLOCKSERVE_CUDA=ON on a machine with "
        "the CUDA Toolkit)");
#endif
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown device '", options.device, "' (expected cpu, cuda or cuda:N)"));
}

}  // namespace blockserve
