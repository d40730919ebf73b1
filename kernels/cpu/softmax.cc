// Log-softmax and per-row target log-probabilities (vectorized max and sum
// of exponentials; V is up to ~50k entries).
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/vec_math.h"
#include "shared/common/logging.h"

namespace blockserve::cpu {
namespace {

// log(sum(exp(row))) computed stably.
float LogSumExp(const float* row, int64_t n) {
  const float max_value = ArgMax(row, n).value;
  return max_value + static_cast<float>(std::log(SumExp(row, n, max_value)));
}

}  // namespace

void LogSoftmax(ThreadPool& pool, const Tensor& logits, const Tensor& out) {
  const int64_t m = logits.rows();
  const int64_t v = logits.cols();
  CHECK(logits.dtype() == DType::kF32 && out.dtype() == DType::kF32);
  CHECK_EQ(out.rows(), m);
  CHECK_EQ(out.cols(), v);
  pool.ParallelFor(m, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* in = logits.data<float>() + r * v;
      float* o = out.data<float>() + r * v;
      const float lse = LogSumExp(in, v);
      for (int64_t i = 0; i < v; ++i) o[i] = in[i] - lse;
    }
  });
}

void TargetLogProbs(ThreadPool& pool, const Tensor& logits, const Tensor& targets,
                    const Tensor& out) {
  const int64_t m = logits.rows();
  const int64_t v = logits.cols();
  CHECK(targets.dtype() == DType::kI32 && targets.numel() == m);
  CHECK(out.dtype() == DType::kF32 && out.numel() == m);
  pool.ParallelFor(m, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* in = logits.data<float>() + r * v;
      const int32_t target = targets.data<int32_t>()[r];
      CHECK(target >= 0 && target < v) << "target id " << target;
      out.data<float>()[r] = in[target] - LogSumExp(in, v);
    }
  });
}

}  // namespace blockserve::cpu
