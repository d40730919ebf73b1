#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_avx512_tiles.h"
#include "kernels/cpu/vec_math.h"

namespace blockserve::cpu {
namespace {

int64_t Panels(int64_t n) { return (n + kPanelWidth - 1) / kPanelWidth; }

inline float EpilogueScalar(float v, int64_t col, float old, const GemmEpilogue& e) {
  if (e.bias != nullptr) v += e.bias[col];
  if (e.activation == Activation::kGelu) {
    v = 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752440f));
  }
  return e.accumulate ? old + v : v;
}

// ---- AVX-512: MR rows x NP panels over depths [d0, d1) ----
//
// The accumulators start from zero at d0 == 0, else from `partial` (where
// the previous depth chunk left them), and go back to `partial` unless d1
// == k, where the epilogue stores them to y. Continuing a chain of FMAs
// from a stored value is the same arithmetic as one unbroken chain, so the
// result does not depend on the chunking.
// Weights are prefetched as in gemm_bf16.cc (which says why): 2 KiB ahead
// in each panel for one tile, one depth chunk ahead for several, wrapping
// from a panel's end into the same panel of the next task.
constexpr int64_t kPrefetchDepthsF32 = 32;

template <int MR, int NP, internal::WeightPrefetch kPrefetch>
BS_TARGET_AVX512 void TileAvx512(const float* x, int64_t k, int64_t d0, int64_t d1,
                                 const float* panel0, int64_t panel_elems, int64_t col0, int64_t n,
                                 const GemmEpilogue& e, float* y, float* partial,
                                 int64_t prefetch_depths) {
  __m512 acc[MR][NP];
  internal::LoadTileAccumulators<MR, NP>(acc, d0 == 0, partial);
  for (int64_t d = d0; d < d1; ++d) {
    __m512 w[NP];
    for (int p = 0; p < NP; ++p) {
      if constexpr (kPrefetch != internal::WeightPrefetch::kNone) {
        const int64_t ahead = d + prefetch_depths;
        internal::PrefetchWeight<kPrefetch>(panel0 + p * panel_elems + ahead * kPanelWidth +
                                            (ahead >= k ? (NP - 1) * panel_elems : 0));
      }
      w[p] = _mm512_loadu_ps(panel0 + p * panel_elems + d * kPanelWidth);
    }
    for (int r = 0; r < MR; ++r) {
      const __m512 xv = _mm512_set1_ps(x[r * k + d]);
      for (int p = 0; p < NP; ++p) acc[r][p] = _mm512_fmadd_ps(xv, w[p], acc[r][p]);
    }
  }
  internal::FinishTile<MR, NP>(acc, d1 == k, partial, col0, n, e, y);
}

// Depth per chunk when several row tiles share a panel pair: 128 F32 depths
// of two panels are 16 KiB, which stay in L1 with the rows' x slices while
// every row tile goes over them.
constexpr int64_t kDepthChunkF32 = 128;

template <int NP>
BS_TARGET_AVX512 void RowsAvx512(const float* x, int64_t m, int64_t k, const float* panel0,
                                 int64_t panel_elems, int64_t col0, int64_t n,
                                 const GemmEpilogue& e, float* y) {
  const int64_t prefetch_depths = m > internal::kMaxTileRows ? kDepthChunkF32 : kPrefetchDepthsF32;
  const internal::WeightPrefetch first = internal::FirstTilePrefetch(n * k * 4);
  internal::ForEachRowTile<NP>(
      m, k, kDepthChunkF32, [&](auto rows, int64_t r, int64_t d0, int64_t d1, float* partial) {
        // The first row tile over a chunk prefetches; the others find it in L1.
        internal::WithWeightPrefetch(r == 0 ? first : internal::WeightPrefetch::kNone,
                                     [&](auto prefetch) {
                                       TileAvx512<decltype(rows)::value, NP, prefetch.value>(
                                           x + r * k, k, d0, d1, panel0, panel_elems, col0, n, e,
                                           y + r * n, partial, prefetch_depths);
                                     });
      });
}

// ---- AVX2 / FMA: MR rows x one 16-column panel ----
template <int MR>
BS_TARGET_AVX2 void TileAvx2(const float* x, int64_t k, const float* panel, int64_t col0, int64_t n,
                             const GemmEpilogue& e, float* y) {
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t d = 0; d < k; ++d) {
    const __m256 w0 = _mm256_loadu_ps(panel + d * kPanelWidth);
    const __m256 w1 = _mm256_loadu_ps(panel + d * kPanelWidth + 8);
    for (int r = 0; r < MR; ++r) {
      const __m256 xv = _mm256_set1_ps(x[r * k + d]);
      acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    alignas(32) float values[16];
    _mm256_store_ps(values, acc[r][0]);
    _mm256_store_ps(values + 8, acc[r][1]);
    for (int64_t c = 0; c < kPanelWidth && col0 + c < n; ++c) {
      float* out = y + r * n + col0 + c;
      *out = EpilogueScalar(values[c], col0 + c, *out, e);
    }
  }
}

BS_TARGET_AVX2 void RowsAvx2(const float* x, int64_t m, int64_t k, const float* panel, int64_t col0,
                             int64_t n, const GemmEpilogue& e, float* y) {
  int64_t r = 0;
  for (; r + 4 <= m; r += 4) TileAvx2<4>(x + r * k, k, panel, col0, n, e, y + r * n);
  for (; r < m; ++r) TileAvx2<1>(x + r * k, k, panel, col0, n, e, y + r * n);
}

void RowsScalar(const float* x, int64_t m, int64_t k, const float* panel, int64_t col0, int64_t n,
                const GemmEpilogue& e, float* y) {
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < kPanelWidth && col0 + c < n; ++c) {
      float sum = 0.0f;
      for (int64_t d = 0; d < k; ++d) sum += x[r * k + d] * panel[d * kPanelWidth + c];
      float* out = y + r * n + col0 + c;
      *out = EpilogueScalar(sum, col0 + c, *out, e);
    }
  }
}

enum class Kernel { kAvx512, kAvx2, kScalar };

Kernel ChooseKernel() {
  const CpuFeatures& f = DetectCpuFeatures();
  if (f.avx512) return Kernel::kAvx512;
  if (f.avx2) return Kernel::kAvx2;
  return Kernel::kScalar;
}

}  // namespace

int64_t PackedF32Elements(int64_t n, int64_t k) { return Panels(n) * k * kPanelWidth; }

void PackF32Weight(const float* src, int64_t n, int64_t k, float* packed) {
  std::fill(packed, packed + PackedF32Elements(n, k), 0.0f);
  for (int64_t c = 0; c < n; ++c) {
    float* panel = packed + (c / kPanelWidth) * k * kPanelWidth + c % kPanelWidth;
    for (int64_t d = 0; d < k; ++d) panel[d * kPanelWidth] = src[c * k + d];
  }
}

const char* GemmF32KernelName() {
  switch (ChooseKernel()) {
    case Kernel::kAvx512:
      return "avx512";
    case Kernel::kAvx2:
      return "avx2";
    case Kernel::kScalar:
      return "scalar";
  }
  return "?";
}

int64_t GemmRowChunk(int64_t k, int64_t element_bytes) {
  // About 256 KiB of activations per chunk (a share of L2), whole 12-row tiles.
  const int64_t rows = (int64_t{256} << 10) / std::max<int64_t>(1, k * element_bytes);
  return std::max<int64_t>(12, rows / 12 * 12);
}

void GemmF32(ThreadPool& pool, const float* x, int64_t m, int64_t k, const float* packed, int64_t n,
             const GemmEpilogue& epilogue, float* y) {
  if (m == 0 || n == 0) return;
  const int64_t panel_elems = k * kPanelWidth;
  const int64_t panels = Panels(n);
  const Kernel kernel = ChooseKernel();
  const int64_t chunk = GemmRowChunk(k, sizeof(float));
  for (int64_t row0 = 0; row0 < m; row0 += chunk) {
    const int64_t rows = std::min(chunk, m - row0);
    const float* xc = x + row0 * k;
    float* yc = y + row0 * n;
    // Tasks of two panels (32 columns); at least ~128K multiply-adds each.
    const int64_t tasks = (panels + 1) / 2;
    const int64_t min_tasks =
        std::max<int64_t>(1, (int64_t{1} << 17) / std::max<int64_t>(1, rows * k * 2 * kPanelWidth));
    pool.ParallelFor(tasks, min_tasks, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t p = 2 * t;
        const float* panel = packed + p * panel_elems;
        const bool two = p + 1 < panels;
        switch (kernel) {
          case Kernel::kAvx512:
            if (two) {
              RowsAvx512<2>(xc, rows, k, panel, panel_elems, p * kPanelWidth, n, epilogue, yc);
            } else {
              RowsAvx512<1>(xc, rows, k, panel, panel_elems, p * kPanelWidth, n, epilogue, yc);
            }
            break;
          case Kernel::kAvx2:
            for (int64_t q = p; q < std::min(p + 2, panels); ++q) {
              RowsAvx2(xc, rows, k, packed + q * panel_elems, q * kPanelWidth, n, epilogue, yc);
            }
            break;
          case Kernel::kScalar:
            for (int64_t q = p; q < std::min(p + 2, panels); ++q) {
              RowsScalar(xc, rows, k, packed + q * panel_elems, q * kPanelWidth, n, epilogue, yc);
            }
            break;
        }
      }
    });
  }
}

}  // namespace blockserve::cpu
