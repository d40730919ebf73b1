// OpenBLAS (Debian's libopenblas0-pthread): cblas_sgemm. OpenBLAS packs the
// weight inside every call; it has no persistent packed form. Debian builds
// 0.3.21 without its BF16 GEMM (no cblas_sbgemm in the library), so BF16
// weights are not offered.
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/kernels/gemm_libraries/gemm_library.h"
#include "cblas.h"

namespace blockserve {
namespace {

class OpenBlasGemm : public HostGemmCall {
 public:
  OpenBlasGemm(const GemmProblem& problem, const float* w)
      : HostGemmCall(problem), w_(w, w + problem.n * problem.k) {}

  void Run() override {
    const auto& p = problem_;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p.m, p.n, p.k, 1.0f, x_.data(), p.k,
                w_.data(), p.k, 0.0f, y_.data(), p.n);
  }

 private:
  std::vector<float> w_;
};

}  // namespace

const char* GemmLibraryName() {
  static const std::string name =
      absl::StrCat("OpenBLAS (", openblas_get_config(), ", core ", openblas_get_corename(), ")");
  return name.c_str();
}

absl::StatusOr<std::unique_ptr<GemmCall>> PrepareGemm(const GemmProblem& problem, const float* w) {
  if (problem.bf16_weights) {
    return absl::UnimplementedError("Debian's OpenBLAS 0.3.21 is built without cblas_sbgemm");
  }
  openblas_set_num_threads(problem.threads);
  return std::make_unique<OpenBlasGemm>(problem, w);
}

}  // namespace blockserve
