// Eigen 3.4 (header-only, OpenMP threads): a row-major matrix product with
// the weight transposed. Eigen 3.4 has bfloat16 only as a scalar type (no
// BF16 product kernel), so BF16 weights are not offered.
#include <string>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "bench/kernels/gemm_libraries/gemm_library.h"

namespace blockserve {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

class EigenGemm : public HostGemmCall {
 public:
  EigenGemm(const GemmProblem& problem, const float* w)
      : HostGemmCall(problem), w_(Eigen::Map<const RowMajor>(w, problem.n, problem.k)) {}

  void Run() override {
    Eigen::Map<const RowMajor> x(x_.data(), problem_.m, problem_.k);
    Eigen::Map<RowMajor> y(y_.data(), problem_.m, problem_.n);
    y.noalias() = x * w_.transpose();
  }

 private:
  RowMajor w_;
};

}  // namespace

const char* GemmLibraryName() {
  static const std::string name = absl::StrCat("Eigen ", EIGEN_WORLD_VERSION, ".",
                                               EIGEN_MAJOR_VERSION, ".", EIGEN_MINOR_VERSION);
  return name.c_str();
}

absl::StatusOr<std::unique_ptr<GemmCall>> PrepareGemm(const GemmProblem& problem, const float* w) {
  if (problem.bf16_weights) {
    return absl::UnimplementedError("Eigen 3.4 has no BF16 matrix product kernel");
  }
  Eigen::setNbThreads(problem.threads);
  return std::make_unique<EigenGemm>(problem, w);
}

}  // namespace blockserve
