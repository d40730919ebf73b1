// LayerNorm over the last dimension, statistics in double for accuracy.
#include <cmath>

#include "kernels/cpu/cpu_ops.h"
#include "shared/common/logging.h"

namespace blockserve::cpu {

void LayerNorm(ThreadPool& pool, const Tensor& x, const Tensor& gamma, const Tensor& beta,
               float eps, const Tensor& y) {
  const int64_t m = x.rows();
  const int64_t d = x.cols();
  CHECK(x.dtype() == DType::kF32 && y.dtype() == DType::kF32);
  CHECK(gamma.dtype() == DType::kF32 && beta.dtype() == DType::kF32);
  CHECK_EQ(gamma.numel(), d);
  CHECK_EQ(beta.numel(), d);
  CHECK_EQ(y.rows(), m);
  CHECK_EQ(y.cols(), d);
  const float* g = gamma.data<float>();
  const float* b = beta.data<float>();
  pool.ParallelFor(m, 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* in = x.data<float>() + r * d;
      float* out = y.data<float>() + r * d;
      double sum = 0;
      for (int64_t i = 0; i < d; ++i) sum += in[i];
      const double mean = sum / d;
      double sq = 0;
      for (int64_t i = 0; i < d; ++i) {
        const double c = in[i] - mean;
        sq += c * c;
      }
      const float inv_std = static_cast<float>(1.0 / std::sqrt(sq / d + eps));
      const float mean_f = static_cast<float>(mean);
      for (int64_t i = 0; i < d; ++i) out[i] = (in[i] - mean_f) * inv_std * g[i] + b[i];
    }
  });
}

}  // namespace blockserve::cpu
