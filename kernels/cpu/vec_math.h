// Vectorized float math for the CPU kernels: exp, erf and exact GELU on
// AVX-512 registers, with scalar versions of the same formulas.
//
// Accuracy: exp within 2 ulp over the range softmax and GELU use; erf within
// 1.5e-7 absolute (Abramowitz & Stegun 7.1.26), so GELU matches
// torch's erf-based GELU to ~1e-7 relative. Functions carry their own
// `target` attributes so they can be used from kernels compiled for the
// baseline ISA and dispatched at run time. Stateless; thread-safe.
#ifndef BLOCKSERVE_KERNELS_CPU_VEC_MATH_H_
#define BLOCKSERVE_KERNELS_CPU_VEC_MATH_H_

#include <immintrin.h>

#include <cmath>

#define BS_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define BS_TARGET_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))
#define BS_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace blockserve::cpu {

// Which vector ISA the machine offers, detected once.
struct CpuFeatures {
  bool avx2 = false;
  bool avx512 = false;       // F, BW, VL, DQ
  bool avx512_bf16 = false;  // vdpbf16ps
};
const CpuFeatures& DetectCpuFeatures();

// Horizontal sum and max of the 16 lanes (GCC 12's _mm512_reduce_* trip
// -Wmaybe-uninitialized).
BS_TARGET_AVX512 inline float ReduceAdd512(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(d, _mm_movehdup_ps(d)));
}
BS_TARGET_AVX512 inline float ReduceMax512(__m512 v) {
  const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  const __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 d = _mm_max_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_max_ss(d, _mm_movehdup_ps(d)));
}

// exp(x) for each lane: range reduction by ln2, degree-6 polynomial.
BS_TARGET_AVX512 inline __m512 Exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)),
                    _mm512_set1_ps(-87.3365478515625f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n * ln2 in two parts for precision.
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// erf(x): Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7.
BS_TARGET_AVX512 inline __m512 Erf512(__m512 x) {
  const __m512 sign = _mm512_and_ps(x, _mm512_set1_ps(-0.0f));
  const __m512 a = _mm512_andnot_ps(_mm512_set1_ps(-0.0f), x);
  const __m512 t = _mm512_div_ps(
      _mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), a, _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  p = _mm512_mul_ps(p, t);
  const __m512 e = Exp512(_mm512_mul_ps(_mm512_mul_ps(a, a), _mm512_set1_ps(-1.0f)));
  const __m512 y = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
  return _mm512_or_ps(y, sign);
}

// 0.5 x (1 + erf(x / sqrt(2))).
BS_TARGET_AVX512 inline __m512 Gelu512(__m512 x) {
  const __m512 e = Erf512(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752440f)));
  return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)),
                       _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
}

// Exact GELU over n floats in place (vectorized where the CPU allows).
void GeluInPlace(float* values, int64_t n);

// Largest value and the lowest index holding it.
struct MaxAndIndex {
  float value;
  int64_t index;
};
MaxAndIndex ArgMax(const float* values, int64_t n);

// sum(exp((values[i] - shift) * scale)), accumulated in float lanes.
double SumExp(const float* values, int64_t n, float shift, float scale = 1.0f);

// out[i] = exp((values[i] - shift) * scale).
void ExpInto(const float* values, int64_t n, float shift, float scale, float* out);

}  // namespace blockserve::cpu

#endif  // BLOCKSERVE_KERNELS_CPU_VEC_MATH_H_
