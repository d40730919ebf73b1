// Blockserve's own CPU kernels (kernels/cpu, through the backend's MatMul,
// as the engine calls them), the reference row of the side-by-side table.
#include "bench/kernels/gemm_libraries/gemm_library.h"
#include "kernels/backend.h"

namespace blockserve {
namespace {

class BlockserveGemm : public GemmCall {
 public:
  BlockserveGemm(std::unique_ptr<Backend> backend, Tensor x, Tensor w, Tensor y)
      : backend_(std::move(backend)), x_(std::move(x)), w_(std::move(w)), y_(std::move(y)) {}

  float* x() override { return x_.data<float>(); }
  float* y() override { return y_.data<float>(); }
  void Run() override { backend_->MatMul(x_, w_, Tensor(), Activation::kNone, false, y_); }

 private:
  std::unique_ptr<Backend> backend_;
  Tensor x_, w_, y_;
};

}  // namespace

const char* GemmLibraryName() { return "blockserve"; }

absl::StatusOr<std::unique_ptr<GemmCall>> PrepareGemm(const GemmProblem& problem, const float* w) {
  auto backend = CreateBackend({.device = "cpu", .threads = problem.threads});
  if (!backend.ok()) return backend.status();
  Backend& b = **backend;
  const DType dtype = problem.bf16_weights ? DType::kBF16 : DType::kF32;
  auto x = b.Empty(DType::kF32, {problem.m, problem.k});
  auto weight = b.Empty(dtype, {problem.n, problem.k});
  auto y = b.Empty(DType::kF32, {problem.m, problem.n});
  if (!x.ok() || !weight.ok() || !y.ok()) return absl::ResourceExhaustedError("no memory");
  if (problem.bf16_weights) {
    b.CopyToDevice(ToBf16(w, problem.n * problem.k).data(), *weight);
  } else {
    b.CopyToDevice(w, *weight);
  }
  auto packed = b.PrepareMatMulWeight(*weight);
  if (!packed.ok()) return packed.status();
  return std::make_unique<BlockserveGemm>(std::move(*backend), std::move(*x), std::move(*packed),
                                          std::move(*y));
}

}  // namespace blockserve
