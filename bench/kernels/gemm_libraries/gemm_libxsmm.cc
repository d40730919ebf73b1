// libxsmm 1.17 (Debian's static libxsmm, no BLAS fallback): JIT-generated
// small-GEMM kernels, driven here the way libxsmm is meant to be used. The
// weight is packed once into column-major panels of kPanelRows output
// columns; each OpenMP thread runs the kernel over its share of the panels,
// one panel at a time for all m rows:
//   y^T[panel] (kPanelRows x m) = panel (kPanelRows x k) * x^T (k x m),
// column-major, so x and y are used in place. BF16 weights use libxsmm's
// BF16 kernels (BF16 inputs, F32 output), with the panel in the VNNI layout
// they read (pairs of depth interleaved) and x converted in every call.
#include <omp.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "bench/kernels/gemm_libraries/gemm_library.h"
#include "libxsmm.h"

namespace blockserve {
namespace {

constexpr int64_t kPanelRows = 64;

class LibxsmmGemm : public HostGemmCall {
 public:
  explicit LibxsmmGemm(const GemmProblem& problem) : HostGemmCall(problem) {}

  absl::Status Init(const float* w) {
    const auto& p = problem_;
    if (p.n % kPanelRows != 0) {
      return absl::UnimplementedError(absl::StrCat("N must be a multiple of ", kPanelRows));
    }
    const libxsmm_blasint mm = kPanelRows, nn = p.m, kk = p.k, lda = kPanelRows, ldb = p.k,
                          ldc = p.n;
    const float alpha = 1.0f, beta = 0.0f;
    if (p.bf16_weights) {
      if (p.k % 2 != 0) return absl::UnimplementedError("BF16 needs an even K");
      const int flags = LIBXSMM_GEMM_FLAG_VNNI_A;
      bf16_kernel_ =
          libxsmm_bsmmdispatch(mm, nn, kk, &lda, &ldb, &ldc, &alpha, &beta, &flags, nullptr);
      if (bf16_kernel_ == nullptr) {
        return absl::UnimplementedError("libxsmm generated no BF16 kernel for this shape");
      }
      // Panel q, depth pair d, column c, d % 2: the VNNI layout of a
      // column-major kPanelRows x k panel.
      const std::vector<uint16_t> w16 = ToBf16(w, p.n * p.k);
      w16_.resize(p.n * p.k);
      for (int64_t col = 0; col < p.n; ++col) {
        const int64_t q = col / kPanelRows, c = col % kPanelRows;
        for (int64_t d = 0; d < p.k; ++d) {
          w16_[q * kPanelRows * p.k + (d / 2) * kPanelRows * 2 + c * 2 + d % 2] =
              w16[col * p.k + d];
        }
      }
      x16_.resize(p.m * p.k);
    } else {
      f32_kernel_ =
          libxsmm_smmdispatch(mm, nn, kk, &lda, &ldb, &ldc, &alpha, &beta, nullptr, nullptr);
      if (f32_kernel_ == nullptr) {
        return absl::UnimplementedError("libxsmm generated no F32 kernel for this shape");
      }
      w_.resize(p.n * p.k);
      for (int64_t col = 0; col < p.n; ++col) {
        const int64_t q = col / kPanelRows, c = col % kPanelRows;
        for (int64_t d = 0; d < p.k; ++d) {
          w_[q * kPanelRows * p.k + d * kPanelRows + c] = w[col * p.k + d];
        }
      }
    }
    return absl::OkStatus();
  }

  void Run() override {
    const auto& p = problem_;
    const int64_t panels = p.n / kPanelRows;
    if (p.bf16_weights) {
      ConvertFromF32(DType::kBF16, x_.data(), x16_.data(), x16_.size());
      const auto* x16 = reinterpret_cast<const libxsmm_bfloat16*>(x16_.data());
      const auto* w16 = reinterpret_cast<const libxsmm_bfloat16*>(w16_.data());
#pragma omp parallel for num_threads(p.threads) schedule(static)
      for (int64_t q = 0; q < panels; ++q) {
        bf16_kernel_(w16 + q * kPanelRows * p.k, x16, y_.data() + q * kPanelRows);
      }
    } else {
#pragma omp parallel for num_threads(p.threads) schedule(static)
      for (int64_t q = 0; q < panels; ++q) {
        f32_kernel_(w_.data() + q * kPanelRows * p.k, x_.data(), y_.data() + q * kPanelRows);
      }
    }
  }

 private:
  libxsmm_smmfunction f32_kernel_ = nullptr;
  libxsmm_bsmmfunction bf16_kernel_ = nullptr;
  std::vector<float> w_;
  std::vector<uint16_t> w16_, x16_;
};

}  // namespace

const char* GemmLibraryName() {
  static const std::string name = [] {
    libxsmm_init();
    return absl::StrCat("libxsmm ", LIBXSMM_VERSION, " (", libxsmm_get_target_arch(), ")");
  }();
  return name.c_str();
}

absl::StatusOr<std::unique_ptr<GemmCall>> PrepareGemm(const GemmProblem& problem, const float* w) {
  libxsmm_init();
  auto call = std::make_unique<LibxsmmGemm>(problem);
  if (absl::Status status = call->Init(w); !status.ok()) return status;
  return call;
}

}  // namespace blockserve
