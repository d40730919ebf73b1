// MatMul on the CPU: F32 GEMM through OpenBLAS, then bias, activation and
// accumulation in one pass over the output rows.
#include <cblas.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/vec_math.h"
#include "shared/common/logging.h"

namespace blockserve::cpu {

void MatMul(ThreadPool& pool, const Tensor& x, const Tensor& w, const Tensor& bias,
            Activation act, bool accumulate, const Tensor& y) {
  const int64_t m = x.rows();
  const int64_t k = x.cols();
  const int64_t n = w.dim(0);
  CHECK(x.dtype() == DType::kF32 && y.dtype() == DType::kF32);
  CHECK_EQ(w.cols(), k) << x.DebugString() << " x " << w.DebugString();
  CHECK_EQ(y.rows(), m);
  CHECK_EQ(y.cols(), n);
  CHECK(bias.empty() || bias.numel() == n);
  CHECK(!(accumulate && act != Activation::kNone)) << "accumulate with an activation";
  if (m == 0) return;
  float* out = y.data<float>();
  const float* b = bias.empty() ? nullptr : bias.data<float>();
  if (w.layout() == TensorLayout::kPackedBf16Panels) {
    GemmBf16(pool, x.data<float>(), m, k, w.data<uint16_t>(), n,
             {.bias = b, .activation = act, .accumulate = accumulate}, out);
    return;
  }
  CHECK(w.dtype() == DType::kF32 && w.layout() == TensorLayout::kRowMajor)
      << "CPU MatMul takes F32 or packed BF16 weights, got " << w.DebugString();

  if (accumulate) {
    // y += x w^T + b: add the bias first, then let GEMM accumulate (beta = 1).
    if (b != nullptr) {
      for (int64_t r = 0; r < m; ++r) {
        float* row = out + r * n;
        for (int64_t c = 0; c < n; ++c) row[c] += b[c];
      }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x.data<float>(), k,
                w.data<float>(), k, 1.0f, out, n);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x.data<float>(), k,
              w.data<float>(), k, 0.0f, out, n);
  if (b == nullptr && act == Activation::kNone) return;
  pool.ParallelFor(m, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* row = out + r * n;
      if (b != nullptr) {
        for (int64_t c = 0; c < n; ++c) row[c] += b[c];
      }
      if (act == Activation::kGelu) GeluInPlace(row, n);
    }
  });
}

}  // namespace blockserve::cpu
