// MatMul on the CPU: the packed-panel GEMM kernels of kernels/cpu/gemm.h with
// the bias, activation and accumulation fused into the store. Weights are
// expected packed by CpuBackend::PrepareMatMulWeight; a row-major weight is
// packed on the fly (correct, but slow: prepare weights once).
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/gemm.h"
#include "shared/common/logging.h"

namespace blockserve::cpu {

void MatMul(ThreadPool& pool, const Tensor& x, const Tensor& w, const Tensor& bias, Activation act,
            bool accumulate, const Tensor& y) {
  const int64_t m = x.rows();
  const int64_t k = x.cols();
  const int64_t n = w.dim(0);
  CHECK(x.dtype() == DType::kF32 && y.dtype() == DType::kF32);
  CHECK_EQ(w.cols(), k) << x.DebugString() << " x " << w.DebugString();
  CHECK_EQ(y.rows(), m);
  CHECK_EQ(y.cols(), n);
  CHECK(bias.empty() || bias.numel() == n);
  if (m == 0) return;
  const GemmEpilogue epilogue{.bias = bias.empty() ? nullptr : bias.data<float>(),
                              .activation = act,
                              .accumulate = accumulate};
  switch (w.layout()) {
    case TensorLayout::kPackedF32Panels:
      GemmF32(pool, x.data<float>(), m, k, w.data<float>(), n, epilogue, y.data<float>());
      return;
    case TensorLayout::kPackedBf16Panels:
      GemmBf16(pool, x.data<float>(), m, k, w.data<uint16_t>(), n, epilogue, y.data<float>());
      return;
    case TensorLayout::kRowMajor:
      break;
  }
  if (w.dtype() == DType::kF32) {
    std::vector<float> packed(PackedF32Elements(n, k));
    PackF32Weight(w.data<float>(), n, k, packed.data());
    GemmF32(pool, x.data<float>(), m, k, packed.data(), n, epilogue, y.data<float>());
    return;
  }
  std::vector<uint16_t> packed(PackedBf16Elements(n, k));
  PackBf16Weight(w.dtype(), w.data(), n, k, packed.data());
  GemmBf16(pool, x.data<float>(), m, k, packed.data(), n, epilogue, y.data<float>());
}

}  // namespace blockserve::cpu
