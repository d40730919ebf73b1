// NeoX "rotate half" rotary embedding on the q and k of a packed qkv matrix.
// Angles are computed in float32 the way the reference implementation
// (Hugging Face GPT-NeoX) computes them, so long positions round alike.
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "shared/common/logging.h"

namespace blockserve::cpu {

void Rotary(ThreadPool& pool, const Tensor& qkv, const Tensor& positions, int num_heads,
            int head_dim, int rotary_dims, float base) {
  const int64_t m = qkv.rows();
  CHECK_EQ(qkv.cols(), int64_t{3} * num_heads * head_dim);
  CHECK(positions.dtype() == DType::kI32 && positions.numel() == m);
  CHECK(rotary_dims % 2 == 0 && rotary_dims <= head_dim);
  if (rotary_dims == 0 || m == 0) return;
  const int half = rotary_dims / 2;
  std::vector<float> inv_freq(half);
  for (int i = 0; i < half; ++i) {
    inv_freq[i] = 1.0f / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(rotary_dims));
  }
  const int32_t* pos = positions.data<int32_t>();
  pool.ParallelFor(m, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> cos_v(half), sin_v(half);
    for (int64_t r = begin; r < end; ++r) {
      const float p = static_cast<float>(pos[r]);
      for (int i = 0; i < half; ++i) {
        const float angle = p * inv_freq[i];
        cos_v[i] = std::cos(angle);
        sin_v[i] = std::sin(angle);
      }
      float* row = qkv.data<float>() + r * qkv.cols();
      for (int h = 0; h < num_heads; ++h) {
        for (int part = 0; part < 2; ++part) {  // q, then k
          float* v = row + (int64_t{h} * 3 + part) * head_dim;
          for (int i = 0; i < half; ++i) {
            const float x1 = v[i];
            const float x2 = v[i + half];
            v[i] = x1 * cos_v[i] - x2 * sin_v[i];
            v[i + half] = x2 * cos_v[i] + x1 * sin_v[i];
          }
        }
      }
    }
  });
}

}  // namespace blockserve::cpu
