#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_avx512_tiles.h"
#include "kernels/cpu/vec_math.h"
#include "shared/common/logging.h"

namespace blockserve::cpu {
namespace {

int64_t Panels(int64_t n) { return (n + kPanelWidth - 1) / kPanelWidth; }
int64_t Pairs(int64_t k) { return (k + 1) / 2; }

// Offset (in uint16) of element (column c, depth d) of a packed weight.
inline int64_t PackedIndex(int64_t c, int64_t d, int64_t pairs) {
  return (((c / kPanelWidth) * pairs + d / 2) * kPanelWidth + c % kPanelWidth) * 2 + d % 2;
}

// ---- Epilogue, shared by the vector kernels through a scalar tail ----
inline float ApplyEpilogueScalar(float v, int64_t col, float old, const GemmEpilogue& e) {
  if (e.bias != nullptr) v += e.bias[col];
  if (e.activation == Activation::kGelu)
    v = 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752440f));
  return e.accumulate ? old + v : v;
}

// ---- AVX-512 BF16 ----

// MR rows x NP panels (16 columns each) over k pairs [j0, j1): the
// accumulators start from zero at j0 == 0, else from `partial`, and go back
// there unless j1 == pairs (then the epilogue stores them to y). The same
// arithmetic as one unbroken chain, whatever the chunking.
//
// Weight prefetch, for every weight: a step streams the layers and then
// 25-100 MB of vocabulary matrix, which evicts the layers before the next
// step, so in a real forward pass no weight comes from the cache (in a
// single-threaded token decoder the layer GEMMs took 40% as long as the
// vocabulary projection, not the 25% their FLOPs predict, while only
// weights of 8 MiB and more were prefetched). A tile prefetches
// `prefetch_lines` ahead in each panel; past the panel's end that is the
// same panel of the next task, which the same thread usually takes next
// (ParallelFor hands out contiguous chunks of tasks): without the wrap
// every panel's first lines came unprefetched. One tile alone looks 4 KiB
// ahead; several tiles over depth chunks look one chunk ahead (the first
// tile prefetches the next chunk while the others reuse this one).
// Measured against the previous scheme (4 KiB ahead without the wrap, 8 MiB
// weights and up), alternating binaries, medians of 3 (gemm_benchmark,
// BLOCKSERVE_BENCH_THREADS=1): the vocabulary projection (K = 512) at
// M = 8 / 16 / 32 went from 2.00 / 3.32 / 5.76 to 1.41 / 2.54 / 4.75 ms;
// the cached layer shapes (F32 and BF16, M = 8-32, one and two threads)
// moved by -9% to +10%, median +1%. `bench --engine --threads 1` on
// block_main_b4_19: +12-15%. A prefetch a whole task ahead was as fast on
// the vocabulary but up to 39% slower on cached layer shapes, median +6%
// (lines fetched that early evict the current ones from L1). Weights of
// internal::kStreamedWeightBytes and more are prefetched non-temporal.
constexpr int64_t kPrefetchAhead = 64;

template <int MR, int NP, internal::WeightPrefetch kPrefetch>
BS_TARGET_AVX512_BF16 void TileAvx512Bf16(const uint32_t* xb, int64_t pairs, int64_t j0, int64_t j1,
                                          const uint16_t* panel0, int64_t panel_elems, int64_t col0,
                                          int64_t n, const GemmEpilogue& e, float* y,
                                          float* partial, int64_t prefetch_lines) {
  __m512 acc[MR][NP];
  internal::LoadTileAccumulators<MR, NP>(acc, j0 == 0, partial);
  const __m512i* w[NP];
  for (int p = 0; p < NP; ++p) w[p] = reinterpret_cast<const __m512i*>(panel0 + p * panel_elems);
  const int64_t wrap = NP * pairs - pairs;  // from past panel p's end to panel p + NP
  for (int64_t j = j0; j < j1; ++j) {
    __m512bh wv[NP];
    for (int p = 0; p < NP; ++p) {
      if constexpr (kPrefetch != internal::WeightPrefetch::kNone) {
        const int64_t ahead = j + prefetch_lines;
        internal::PrefetchWeight<kPrefetch>(w[p] + ahead + (ahead >= pairs ? wrap : 0));
      }
      wv[p] = (__m512bh)_mm512_loadu_si512(w[p] + j);
    }
    for (int r = 0; r < MR; ++r) {
      const __m512bh xv = (__m512bh)_mm512_set1_epi32(static_cast<int>(xb[r * pairs + j]));
      for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_dpbf16_ps(acc[r][p], xv, wv[p]);
    }
  }
  internal::FinishTile<MR, NP>(acc, j1 == pairs, partial, col0, n, e, y);
}

// k pairs per chunk when several row tiles share a panel pair: 128 pairs of
// two panels are 16 KiB, which stay in L1 while every row tile goes over them.
constexpr int64_t kPairChunkBf16 = 128;

template <int NP>
BS_TARGET_AVX512_BF16 void RowsAvx512Bf16(const uint32_t* xb, int64_t m, int64_t pairs,
                                          const uint16_t* panel0, int64_t panel_elems, int64_t col0,
                                          int64_t n, const GemmEpilogue& e, float* y) {
  const int64_t prefetch_lines = m > internal::kMaxTileRows ? kPairChunkBf16 : kPrefetchAhead;
  const internal::WeightPrefetch first = internal::FirstTilePrefetch(n * pairs * 4);
  internal::ForEachRowTile<NP>(
      m, pairs, kPairChunkBf16, [&](auto rows, int64_t r, int64_t j0, int64_t j1, float* partial) {
        // The first row tile over a chunk prefetches; the others find it in L1.
        internal::WithWeightPrefetch(r == 0 ? first : internal::WeightPrefetch::kNone,
                                     [&](auto prefetch) {
                                       TileAvx512Bf16<decltype(rows)::value, NP, prefetch.value>(
                                           xb + r * pairs, pairs, j0, j1, panel0, panel_elems, col0,
                                           n, e, y + r * n, partial, prefetch_lines);
                                     });
      });
}

// x rows to BF16 pairs, round to nearest even (odd k padded with 0).
BS_TARGET_AVX512_BF16 void ConvertRowsAvx512Bf16(const float* x, int64_t m, int64_t k,
                                                 uint32_t* xb) {
  const int64_t pairs = Pairs(k);
  for (int64_t r = 0; r < m; ++r) {
    const float* in = x + r * k;
    uint16_t* out = reinterpret_cast<uint16_t*>(xb + r * pairs);
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + i + 16), _mm512_loadu_ps(in + i));
      _mm512_storeu_si512(out + i, (__m512i)v);
    }
    for (; i < k; ++i) out[i] = F32ToBf16(in[i]);
    if (k % 2) out[k] = 0;
  }
}

// ---- AVX2 / FMA: BF16 weights widened to F32, activations kept in F32 ----

template <int MR>
BS_TARGET_AVX2 void TileAvx2(const float* x, int64_t k, const uint16_t* panel, int64_t col0,
                             int64_t n, const GemmEpilogue& e, float* y) {
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const int64_t pairs = Pairs(k);
  const __m256i high_mask = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  for (int64_t j = 0; j < pairs; ++j) {
    const __m256i* wp = reinterpret_cast<const __m256i*>(panel + j * 2 * kPanelWidth);
    __m256 lo[2], hi[2];
    for (int h = 0; h < 2; ++h) {
      const __m256i v = _mm256_loadu_si256(wp + h);
      lo[h] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      hi[h] = _mm256_castsi256_ps(_mm256_and_si256(v, high_mask));
    }
    const int64_t d = 2 * j;
    for (int r = 0; r < MR; ++r) {
      const __m256 x0 = _mm256_set1_ps(x[r * k + d]);
      const __m256 x1 = _mm256_set1_ps(d + 1 < k ? x[r * k + d + 1] : 0.0f);
      for (int h = 0; h < 2; ++h) {
        acc[r][h] = _mm256_fmadd_ps(x0, lo[h], acc[r][h]);
        acc[r][h] = _mm256_fmadd_ps(x1, hi[h], acc[r][h]);
      }
    }
  }
  for (int r = 0; r < MR; ++r) {
    alignas(32) float values[16];
    _mm256_store_ps(values, acc[r][0]);
    _mm256_store_ps(values + 8, acc[r][1]);
    for (int64_t c = 0; c < kPanelWidth && col0 + c < n; ++c) {
      float* out = y + r * n + col0 + c;
      *out = ApplyEpilogueScalar(values[c], col0 + c, *out, e);
    }
  }
}

BS_TARGET_AVX2 void RowsAvx2(const float* x, int64_t m, int64_t k, const uint16_t* panel,
                             int64_t col0, int64_t n, const GemmEpilogue& e, float* y) {
  int64_t r = 0;
  for (; r + 4 <= m; r += 4) TileAvx2<4>(x + r * k, k, panel, col0, n, e, y + r * n);
  for (; r < m; ++r) TileAvx2<1>(x + r * k, k, panel, col0, n, e, y + r * n);
}

// ---- Scalar ----

void RowsScalar(const float* x, int64_t m, int64_t k, const uint16_t* packed, int64_t pairs,
                int64_t col, int64_t n, const GemmEpilogue& e, float* y) {
  for (int64_t r = 0; r < m; ++r) {
    float sum = 0.0f;
    for (int64_t d = 0; d < k; ++d) {
      sum += x[r * k + d] * Bf16ToF32(packed[PackedIndex(col, d, pairs)]);
    }
    float* out = y + r * n + col;
    *out = ApplyEpilogueScalar(sum, col, *out, e);
  }
}

enum class Kernel { kAvx512Bf16, kAvx2, kScalar };

Kernel ChooseKernel() {
  const CpuFeatures& f = DetectCpuFeatures();
  if (f.avx512_bf16) return Kernel::kAvx512Bf16;
  if (f.avx2) return Kernel::kAvx2;
  return Kernel::kScalar;
}

}  // namespace

int64_t PackedBf16Elements(int64_t n, int64_t k) { return Panels(n) * Pairs(k) * kPanelWidth * 2; }

void PackBf16Weight(DType dtype, const void* src, int64_t n, int64_t k, uint16_t* packed) {
  const int64_t pairs = Pairs(k);
  std::fill(packed, packed + PackedBf16Elements(n, k), 0);
  std::vector<float> row(k);
  for (int64_t c = 0; c < n; ++c) {
    ConvertToF32(dtype, static_cast<const char*>(src) + c * k * DTypeSize(dtype), row.data(), k);
    for (int64_t d = 0; d < k; ++d) packed[PackedIndex(c, d, pairs)] = F32ToBf16(row[d]);
  }
}

const char* GemmBf16KernelName() {
  switch (ChooseKernel()) {
    case Kernel::kAvx512Bf16:
      return "avx512-bf16";
    case Kernel::kAvx2:
      return "avx2";
    case Kernel::kScalar:
      return "scalar";
  }
  return "?";
}

void GemmBf16(ThreadPool& pool, const float* x, int64_t m, int64_t k, const uint16_t* packed,
              int64_t n, const GemmEpilogue& epilogue, float* y) {
  if (m == 0 || n == 0) return;
  const int64_t pairs = Pairs(k);
  const int64_t panel_elems = pairs * kPanelWidth * 2;
  const int64_t panels = Panels(n);
  const Kernel kernel = ChooseKernel();
  std::vector<uint32_t> xb;
  if (kernel == Kernel::kAvx512Bf16) {
    xb.resize(m * pairs);
    ConvertRowsAvx512Bf16(x, m, k, xb.data());
  }
  const int64_t chunk = GemmRowChunk(k, sizeof(uint16_t));
  for (int64_t row0 = 0; row0 < m; row0 += chunk) {
    const int64_t rows = std::min(chunk, m - row0);
    float* yc = y + row0 * n;
    // Tasks of two panels (32 columns); at least ~128K multiply-adds each.
    const int64_t tasks = (panels + 1) / 2;
    const int64_t min_tasks =
        std::max<int64_t>(1, (int64_t{1} << 17) / std::max<int64_t>(1, rows * k * 2 * kPanelWidth));
    pool.ParallelFor(tasks, min_tasks, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t p = 2 * t;
        const uint16_t* panel = packed + p * panel_elems;
        if (kernel == Kernel::kAvx512Bf16) {
          const uint32_t* xc = xb.data() + row0 * pairs;
          if (p + 1 < panels) {
            RowsAvx512Bf16<2>(xc, rows, pairs, panel, panel_elems, p * kPanelWidth, n, epilogue,
                              yc);
          } else {
            RowsAvx512Bf16<1>(xc, rows, pairs, panel, panel_elems, p * kPanelWidth, n, epilogue,
                              yc);
          }
          continue;
        }
        for (int64_t q = p; q < std::min(p + 2, panels); ++q) {
          if (kernel == Kernel::kAvx2) {
            RowsAvx2(x + row0 * k, rows, k, packed + q * panel_elems, q * kPanelWidth, n, epilogue,
                     yc);
          } else {
            for (int64_t c = q * kPanelWidth; c < std::min(n, (q + 1) * kPanelWidth); ++c) {
              RowsScalar(x + row0 * k, rows, k, packed, pairs, c, n, epilogue, yc);
            }
          }
        }
      }
    });
  }
}

}  // namespace blockserve::cpu
