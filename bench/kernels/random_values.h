// Reproducible random inputs for the kernel benchmarks and their tests.
#ifndef BLOCKSERVE_BENCH_KERNELS_RANDOM_VALUES_H_
#define BLOCKSERVE_BENCH_KERNELS_RANDOM_VALUES_H_

#include <cstdint>
#include <random>
#include <vector>

namespace blockserve {

// `n` samples of N(0, stddev^2), the same for the same seed.
inline std::vector<float> RandomNormal(size_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> values(n);
  for (float& v : values) v = dist(rng);
  return values;
}

}  // namespace blockserve

#endif  // BLOCKSERVE_BENCH_KERNELS_RANDOM_VALUES_H_
