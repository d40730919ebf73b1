// The counter-based random draw behind sampling, shared by every backend.
//
// A token's draw is a pure function of (seed, position): no generator state
// is carried between tokens, so the same request gives the same tokens on any
// backend, in any batch, on any worker, and a block decoded twice (a retry)
// gives the same tokens. Header-only so that device code can include it.
#ifndef BLOCKSERVE_KERNELS_SAMPLING_RNG_H_
#define BLOCKSERVE_KERNELS_SAMPLING_RNG_H_

#include <cstdint>

#if defined(__CUDACC__)
#define BS_HOST_DEVICE __host__ __device__
#else
#define BS_HOST_DEVICE
#endif

namespace blockserve {

// SplitMix64 finalizer: a bijective 64-bit mix with good avalanche.
BS_HOST_DEVICE inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform draw in [0, 1) with 53 random bits for token `position` of a
// sequence sampled with `seed`.
BS_HOST_DEVICE inline double SamplingDraw(uint64_t seed, int64_t position) {
  const uint64_t mixed = SplitMix64(SplitMix64(seed) ^ static_cast<uint64_t>(position));
  return static_cast<double>(mixed >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace blockserve

#endif  // BLOCKSERVE_KERNELS_SAMPLING_RNG_H_
