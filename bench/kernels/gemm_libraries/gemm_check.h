// The correctness check of a GemmCall's output, shared by the benchmark
// (which refuses to time a wrong product) and the adapters' tests.
#ifndef BLOCKSERVE_BENCH_KERNELS_GEMM_LIBRARIES_GEMM_CHECK_H_
#define BLOCKSERVE_BENCH_KERNELS_GEMM_LIBRARIES_GEMM_CHECK_H_

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "bench/kernels/gemm_libraries/gemm_library.h"
#include "shared/tensor/dtype.h"

namespace blockserve {

// The largest relative error a correct product shows: BF16 rounding of x and
// w leaves ~1e-3, the summation order ~1e-6 in F32.
inline double GemmTolerance(const GemmProblem& problem) {
  return problem.bf16_weights ? 2e-2 : 1e-4;
}

// Relative (Frobenius) error of y against the product computed in double
// from the values the library was given: BF16-rounded weights and
// activations for a BF16 product (every library here rounds the activations
// too). Every row, and at most ~2,048 columns spread over the whole width
// (a wrong layout shows in any of them), so that checking a vocabulary
// projection takes milliseconds.
inline double GemmRelativeError(const GemmProblem& p, const float* x, const float* w,
                                const float* y) {
  auto round = [&](float v) { return p.bf16_weights ? Bf16ToF32(F32ToBf16(v)) : v; };
  const int64_t stride = std::max<int64_t>(1, p.n / 2048);
  double error = 0, norm = 0;
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = i % stride; j < p.n; j += stride) {
      double expected = 0;
      for (int64_t d = 0; d < p.k; ++d) {
        expected += static_cast<double>(round(x[i * p.k + d])) * round(w[j * p.k + d]);
      }
      const double diff = y[i * p.n + j] - expected;
      error += diff * diff;
      norm += expected * expected;
    }
  }
  return std::sqrt(error / std::max(norm, 1e-30));
}

}  // namespace blockserve

#endif  // BLOCKSERVE_BENCH_KERNELS_GEMM_LIBRARIES_GEMM_CHECK_H_
