#include "kernels/cpu/vec_math.h"

#include <algorithm>
#include <cmath>

namespace blockserve::cpu {
namespace {

BS_TARGET_AVX512 void GeluAvx512(float* values, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(values + i, Gelu512(_mm512_loadu_ps(values + i)));
  }
  if (i < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(values + i, mask, Gelu512(_mm512_maskz_loadu_ps(mask, values + i)));
  }
}

BS_TARGET_AVX512 MaxAndIndex ArgMaxAvx512(const float* values, int64_t n) {
  __m512 best = _mm512_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) best = _mm512_max_ps(best, _mm512_loadu_ps(values + i));
  float max_value = ReduceMax512(best);
  for (int64_t j = i; j < n; ++j) max_value = std::max(max_value, values[j]);
  // First index of the maximum.
  const __m512 target = _mm512_set1_ps(max_value);
  for (i = 0; i + 16 <= n; i += 16) {
    const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_loadu_ps(values + i), target, _CMP_EQ_OQ);
    if (hit) return {max_value, i + __builtin_ctz(hit)};
  }
  for (; i < n; ++i) {
    if (values[i] == max_value) return {max_value, i};
  }
  return {max_value, 0};  // all NaN
}

BS_TARGET_AVX512 double SumExpAvx512(const float* values, int64_t n, float shift, float scale) {
  const __m512 s = _mm512_set1_ps(shift);
  const __m512 c = _mm512_set1_ps(scale);
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc =
        _mm512_add_ps(acc, Exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(values + i), s), c)));
  }
  if (i < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 e =
        Exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, values + i), s), c));
    acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(mask, e));
  }
  return ReduceAdd512(acc);
}

BS_TARGET_AVX512 void ExpIntoAvx512(const float* values, int64_t n, float shift, float scale,
                                    float* out) {
  const __m512 s = _mm512_set1_ps(shift);
  const __m512 c = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(out + i,
                     Exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(values + i), s), c)));
  }
  if (i < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(
        out + i, mask,
        Exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, values + i), s), c)));
  }
}

}  // namespace

MaxAndIndex ArgMax(const float* values, int64_t n) {
  if (DetectCpuFeatures().avx512) return ArgMaxAvx512(values, n);
  MaxAndIndex best{-INFINITY, 0};
  for (int64_t i = 0; i < n; ++i) {
    if (values[i] > best.value) best = {values[i], i};
  }
  return best;
}

double SumExp(const float* values, int64_t n, float shift, float scale) {
  if (DetectCpuFeatures().avx512) return SumExpAvx512(values, n, shift, scale);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp((values[i] - shift) * scale);
  return sum;
}

void ExpInto(const float* values, int64_t n, float shift, float scale, float* out) {
  if (DetectCpuFeatures().avx512) return ExpIntoAvx512(values, n, shift, scale, out);
  for (int64_t i = 0; i < n; ++i) out[i] = std::exp((values[i] - shift) * scale);
}

const CpuFeatures& DetectCpuFeatures() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
    return f;
  }();
  return features;
}

void GeluInPlace(float* values, int64_t n) {
  if (DetectCpuFeatures().avx512) {
    GeluAvx512(values, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    values[i] = 0.5f * values[i] * (1.0f + std::erf(values[i] * 0.70710678118654752440f));
  }
}

}  // namespace blockserve::cpu
