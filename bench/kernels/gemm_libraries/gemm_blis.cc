// BLIS 0.9 (Debian's libblis4-openmp), typed API: bli_sgemm with the
// weight read transposed through its strides. BLIS 0.9 has no BF16 GEMM.
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/kernels/gemm_libraries/gemm_library.h"
#include "blis.h"

namespace blockserve {
namespace {

class BlisGemm : public HostGemmCall {
 public:
  BlisGemm(const GemmProblem& problem, const float* w)
      : HostGemmCall(problem), w_(w, w + problem.n * problem.k) {}

  void Run() override {
    const auto& p = problem_;
    float one = 1.0f, zero = 0.0f;
    // y[m, n] = x[m, k] * (w[n, k])^T; every operand row-major (column
    // stride 1).
    bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, p.m, p.n, p.k, &one, x_.data(), p.k, 1, w_.data(),
              p.k, 1, &zero, y_.data(), p.n, 1);
  }

 private:
  std::vector<float> w_;
};

}  // namespace

const char* GemmLibraryName() {
  static const std::string name = absl::StrCat("BLIS ", bli_info_get_version_str(), " (",
                                               bli_arch_string(bli_arch_query_id()), " kernels)");
  return name.c_str();
}

absl::StatusOr<std::unique_ptr<GemmCall>> PrepareGemm(const GemmProblem& problem, const float* w) {
  if (problem.bf16_weights) return absl::UnimplementedError("BLIS 0.9 has no BF16 GEMM");
  bli_thread_set_num_threads(problem.threads);
  return std::make_unique<BlisGemm>(problem, w);
}

}  // namespace blockserve
