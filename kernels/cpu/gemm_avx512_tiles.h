// The parts the AVX-512 GEMM kernels (gemm_f32.cc, gemm_bf16.cc) share: the
// accumulator tile's start and end (depth chunks continue from a scratch
// copy; the last one applies the epilogue and stores), the walk over
// balanced row tiles, and the weight prefetch hint. Each kernel keeps only
// its inner product loop.
// Internal to kernels/cpu; stateless, thread-safe.
#ifndef BLOCKSERVE_KERNELS_CPU_GEMM_AVX512_TILES_H_
#define BLOCKSERVE_KERNELS_CPU_GEMM_AVX512_TILES_H_

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/vec_math.h"

namespace blockserve::cpu::internal {

// How a row tile prefetches its weight panels: not at all (a later row tile
// over a chunk the first one brought to L1), into the caches, or
// non-temporal. A weight of kStreamedWeightBytes or more (a vocabulary
// matrix: 25-100 MB) is far larger than the last-level cache and is read
// once per forward pass, so caching it only evicts what the next pass reads
// again: the layers' weights, the KV cache, and, when several services share
// the machine, each other's. Non-temporal prefetches keep it out of L3.
// Measured with two single-threaded token workers (block_main_b4_19,
// `blockserve up`, 4 alternating rounds): +1-5% at 32 streams, median
// +3.5%; the in-process engine and the GEMM micro-benchmarks within noise.
enum class WeightPrefetch { kNone, kCached, kStreamed };
inline constexpr int64_t kStreamedWeightBytes = int64_t{16} << 20;

inline WeightPrefetch FirstTilePrefetch(int64_t weight_bytes) {
  return weight_bytes >= kStreamedWeightBytes ? WeightPrefetch::kStreamed : WeightPrefetch::kCached;
}

template <WeightPrefetch P>
BS_TARGET_AVX512 inline void PrefetchWeight(const void* line) {
  if constexpr (P == WeightPrefetch::kCached) {
    _mm_prefetch(static_cast<const char*>(line), _MM_HINT_T0);
  } else if constexpr (P == WeightPrefetch::kStreamed) {
    _mm_prefetch(static_cast<const char*>(line), _MM_HINT_NTA);
  }
}

// Calls fn(std::integral_constant<WeightPrefetch, P>) for the run-time `p`.
template <typename Fn>
inline void WithWeightPrefetch(WeightPrefetch p, Fn&& fn) {
  switch (p) {
    case WeightPrefetch::kNone:
      fn(std::integral_constant<WeightPrefetch, WeightPrefetch::kNone>{});
      break;
    case WeightPrefetch::kCached:
      fn(std::integral_constant<WeightPrefetch, WeightPrefetch::kCached>{});
      break;
    case WeightPrefetch::kStreamed:
      fn(std::integral_constant<WeightPrefetch, WeightPrefetch::kStreamed>{});
      break;
  }
}

// Accumulators of MR rows x NP panels: zero for the first depth chunk, else
// where the previous chunk left them in `partial`.
template <int MR, int NP>
BS_TARGET_AVX512 inline void LoadTileAccumulators(__m512 (&acc)[MR][NP], bool first_chunk,
                                                  const float* partial) {
  for (int r = 0; r < MR; ++r) {
    for (int p = 0; p < NP; ++p) {
      acc[r][p] = first_chunk ? _mm512_setzero_ps() : _mm512_loadu_ps(partial + (r * NP + p) * 16);
    }
  }
}

// After a depth chunk: back to `partial` when more chunks follow (the same
// arithmetic as one unbroken chain), else bias, activation and accumulate,
// stored to rows of y (`n` columns) from column `col0` on.
template <int MR, int NP>
BS_TARGET_AVX512 inline void FinishTile(const __m512 (&acc)[MR][NP], bool last_chunk,
                                        float* partial, int64_t col0, int64_t n,
                                        const GemmEpilogue& e, float* y) {
  if (!last_chunk) {
    for (int r = 0; r < MR; ++r) {
      for (int p = 0; p < NP; ++p) _mm512_storeu_ps(partial + (r * NP + p) * 16, acc[r][p]);
    }
    return;
  }
  for (int p = 0; p < NP; ++p) {
    const int64_t col = col0 + p * kPanelWidth;
    if (col >= n) break;
    const int64_t width = std::min<int64_t>(kPanelWidth, n - col);
    const __mmask16 mask = static_cast<__mmask16>((1u << width) - 1);
    const __m512 bias =
        e.bias != nullptr ? _mm512_maskz_loadu_ps(mask, e.bias + col) : _mm512_setzero_ps();
    for (int r = 0; r < MR; ++r) {
      float* out = y + r * n + col;
      __m512 v = _mm512_add_ps(acc[r][p], bias);
      if (e.activation == Activation::kGelu) v = Gelu512(v);
      if (e.accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out));
      _mm512_mask_storeu_ps(out, mask, v);
    }
  }
}

// Row tiles of at most kMaxTileRows, balanced (16 rows: 8 + 8, not 12 + 4):
// a tile of few rows has too few independent accumulators to hide the
// multiply-add latency. With several tiles, the depth `depth` goes in chunks
// of `tiled_chunk` so the panels' slice stays in L1 while every tile goes
// over it. Calls tile(std::integral_constant<int, R>, first_row, d0, d1,
// partial) for each tile and chunk; `partial` is per-thread scratch for
// NP panels (null with a single tile). A row's arithmetic does not depend
// on its tile.
inline constexpr int kMaxTileRows = 12;

template <int NP, typename TileFn>
void ForEachRowTile(int64_t m, int64_t depth, int64_t tiled_chunk, TileFn&& tile) {
  const int64_t tiles = (m + kMaxTileRows - 1) / kMaxTileRows;
  const int64_t chunk = tiles > 1 ? tiled_chunk : depth;
  thread_local std::vector<float> partials;
  if (tiles > 1) partials.resize(tiles * kMaxTileRows * NP * 16);
  for (int64_t d0 = 0; d0 < depth; d0 += chunk) {
    const int64_t d1 = std::min(depth, d0 + chunk);
    int64_t r = 0;
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t rows = (m - r + (tiles - t) - 1) / (tiles - t);
      float* partial = tiles > 1 ? partials.data() + t * kMaxTileRows * NP * 16 : nullptr;
      switch (rows) {
#define BS_TILE_CASE(R)                                         \
  case R:                                                       \
    tile(std::integral_constant<int, R>{}, r, d0, d1, partial); \
    break;
        BS_TILE_CASE(1)
        BS_TILE_CASE(2)
        BS_TILE_CASE(3)
        BS_TILE_CASE(4)
        BS_TILE_CASE(5)
        BS_TILE_CASE(6)
        BS_TILE_CASE(7)
        BS_TILE_CASE(8)
        BS_TILE_CASE(9)
        BS_TILE_CASE(10)
        BS_TILE_CASE(11)
        BS_TILE_CASE(12)
#undef BS_TILE_CASE
        default:
          break;
      }
      r += rows;
    }
  }
}

}  // namespace blockserve::cpu::internal

#endif  // BLOCKSERVE_KERNELS_CPU_GEMM_AVX512_TILES_H_
