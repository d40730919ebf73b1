// Causal attention over a paged KV cache.
//
// First the k and v of every new row are written to their cache slots. Then
// two paths, neither of which materializes a query x key matrix:
//  - decode (a sequence with one new row) and machines without AVX-512: one
//    task per (query row, head) computes that row's scores over the cached
//    keys (one score vector of the sequence's length), its softmax and the
//    weighted sum of values (AVX-512 and head_dim a multiple of 16: 16 keys
//    at a time, see DecodeRowAvx512; otherwise a portable loop);
//  - prefill (a sequence with several new rows; AVX-512, head_dim a multiple
//    of 8): one task per (sequence, head, tile of 16 query rows), the 16
//    rows in the 16 lanes of a vector, streaming the keys and values 16 at a
//    time with an online softmax (running max and sum per row, as in
//    FlashAttention), so each key and value is read once per 16 rows and
//    the scratch is one 16 x 16 block of probabilities.
// A row's result depends only on its own query and keys (lanes never mix),
// not on the rows it is batched or tiled with; the two paths agree to float
// rounding.
//
// The cache holds F32 or F16 (half the bytes to read per decoded token, as
// llama.cpp's default). F16 entries are rounded once, when written, and
// widened to F32 as they are read; all arithmetic stays F32.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/vec_math.h"
#include "shared/common/logging.h"

namespace blockserve::cpu {
namespace {

inline float Dot(const float* a, const float* b, int n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// Cache elements: float (F32) or uint16_t (F16 bits).
inline float KvToF32(float x) { return x; }
inline float KvToF32(uint16_t x) { return F16ToF32(x); }

// 16 cache elements widened to F32.
BS_TARGET_AVX512 inline __m512 LoadKv16(const float* p) { return _mm512_loadu_ps(p); }
BS_TARGET_AVX512 inline __m512 LoadKv16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// n F16 values to F32, 16 at a time (a masked tail).
BS_TARGET_AVX512 inline void WidenF16(const uint16_t* src, int n, float* dst) {
  for (int i = 0; i < n; i += 16) {
    const __mmask16 mask = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dst + i, mask, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, src + i)));
  }
}

// n floats into the cache's element type (F16: round to nearest even, as
// F32ToF16).
inline void StoreKv(const float* src, int n, float* dst) {
  std::memcpy(dst, src, n * sizeof(float));
}
BS_TARGET_AVX512 void StoreKvAvx512(const float* src, int n, uint16_t* dst) {
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(dst + i),
        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) dst[i] = F32ToF16(src[i]);
}
inline void StoreKv(const float* src, int n, uint16_t* dst) {
  if (DetectCpuFeatures().avx512) {
    StoreKvAvx512(src, n, dst);
    return;
  }
  for (int i = 0; i < n; ++i) dst[i] = F32ToF16(src[i]);
}

constexpr int kTile = 16;  // query rows per prefill task (vector lanes), keys per block

template <typename KvT>
struct PrefillTile {
  const float* qkv;  // packed rows
  int64_t qkv_width;
  int64_t first_row;       // of the tile, in qkv
  int rows;                // 1..kTile valid rows
  int64_t first_position;  // position of the tile's first row
  const int32_t* pages;    // the sequence's page table
  const KvT* k_cache;
  const KvT* v_cache;
  int64_t page_stride;
  int64_t head_offset;  // h * page_size * head_dim
  int page_size;
  int head;
  int head_dim;
  float scale;
  float* out;  // row 0 of the tile, head h
  int64_t out_width;
};

// Floats of scratch PrefillTileAvx512 needs.
int64_t PrefillScratchFloats(int head_dim) { return (4 * int64_t{head_dim} + kTile) * kTile; }

// The online-softmax tile kernel (see the file comment). `scratch` holds
// PrefillScratchFloats(head_dim); head_dim is a multiple of 8. F16 keys and
// values are widened a block of 16 at a time into the scratch, once per 16
// query rows.
template <typename KvT>
BS_TARGET_AVX512 void PrefillTileAvx512(const PrefillTile<KvT>& t, float* scratch) {
  const int hd = t.head_dim;
  float* qt = scratch;                    // [hd][16]: the tile's queries, transposed
  float* ot = scratch + hd * kTile;       // [hd][16]: output accumulators, transposed
  float* probs = ot + hd * kTile;         // [16 keys][16 rows]
  float* wide_k = probs + kTile * kTile;  // [16 keys][hd]: F16 keys widened
  float* wide_v = wide_k + hd * kTile;    // [16 keys][hd]: F16 values widened
  // Queries, transposed; missing rows repeat the last one (never stored).
  for (int i = 0; i < kTile; ++i) {
    const int row = std::min(i, t.rows - 1);
    const float* q = t.qkv + (t.first_row + row) * t.qkv_width + int64_t{t.head} * 3 * hd;
    for (int d = 0; d < hd; ++d) qt[d * kTile + i] = q[d];
  }
  for (int d = 0; d < hd; ++d) _mm512_storeu_ps(ot + d * kTile, _mm512_setzero_ps());
  // Row i sits at position first_position + min(i, rows - 1).
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i positions = _mm512_add_epi32(_mm512_min_epi32(lane, _mm512_set1_epi32(t.rows - 1)),
                                             _mm512_set1_epi32(static_cast<int>(t.first_position)));
  const int64_t last_key = t.first_position + t.rows - 1;
  __m512 running_max = _mm512_set1_ps(-INFINITY);
  __m512 running_sum = _mm512_setzero_ps();
  const __m512 scale = _mm512_set1_ps(t.scale);
  const float* keys[kTile];
  const float* values[kTile];
  __m512 s[kTile];
  for (int64_t block = 0; block <= last_key; block += kTile) {
    const int n = static_cast<int>(std::min<int64_t>(kTile, last_key + 1 - block));
    for (int j = 0; j < n; ++j) {
      const int64_t key = block + j;
      const int64_t offset = int64_t{t.pages[key / t.page_size]} * t.page_stride + t.head_offset +
                             (key % t.page_size) * hd;
      if constexpr (std::is_same_v<KvT, float>) {
        keys[j] = t.k_cache + offset;
        values[j] = t.v_cache + offset;
      } else {
        WidenF16(t.k_cache + offset, hd, wide_k + j * hd);
        WidenF16(t.v_cache + offset, hd, wide_v + j * hd);
        keys[j] = wide_k + j * hd;
        values[j] = wide_v + j * hd;
      }
    }
    // Scores: s[j] (lanes: rows) = q . k_j, a fused multiply-add chain over d.
    int j0 = 0;
    for (; j0 + 4 <= n; j0 += 4) {
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      const float *k0 = keys[j0], *k1 = keys[j0 + 1], *k2 = keys[j0 + 2], *k3 = keys[j0 + 3];
      for (int d = 0; d < hd; ++d) {
        const __m512 q = _mm512_loadu_ps(qt + d * kTile);
        a0 = _mm512_fmadd_ps(q, _mm512_set1_ps(k0[d]), a0);
        a1 = _mm512_fmadd_ps(q, _mm512_set1_ps(k1[d]), a1);
        a2 = _mm512_fmadd_ps(q, _mm512_set1_ps(k2[d]), a2);
        a3 = _mm512_fmadd_ps(q, _mm512_set1_ps(k3[d]), a3);
      }
      s[j0] = a0;
      s[j0 + 1] = a1;
      s[j0 + 2] = a2;
      s[j0 + 3] = a3;
    }
    for (; j0 < n; ++j0) {
      __m512 a = _mm512_setzero_ps();
      const float* k = keys[j0];
      for (int d = 0; d < hd; ++d) {
        a = _mm512_fmadd_ps(_mm512_loadu_ps(qt + d * kTile), _mm512_set1_ps(k[d]), a);
      }
      s[j0] = a;
    }
    // Causal mask (key > row position), block max, rescale, probabilities.
    const bool diagonal = block + n - 1 > t.first_position;
    __mmask16 visible[kTile];
    __m512 block_max = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < n; ++j) {
      s[j] = _mm512_mul_ps(s[j], scale);
      visible[j] = diagonal ? _mm512_cmpge_epi32_mask(
                                  positions, _mm512_set1_epi32(static_cast<int>(block + j)))
                            : static_cast<__mmask16>(0xffff);
      block_max = _mm512_mask_max_ps(block_max, visible[j], block_max, s[j]);
    }
    const __m512 new_max = _mm512_max_ps(running_max, block_max);
    // First block: running_max is -inf and Exp512 clamps to ~1e-38; the sum
    // and the accumulators are still 0, so nothing changes.
    const __m512 alpha = Exp512(_mm512_sub_ps(running_max, new_max));
    running_max = new_max;
    __m512 sum = _mm512_mul_ps(running_sum, alpha);
    for (int j = 0; j < n; ++j) {
      const __m512 p = _mm512_maskz_mov_ps(visible[j], Exp512(_mm512_sub_ps(s[j], new_max)));
      sum = _mm512_add_ps(sum, p);
      _mm512_storeu_ps(probs + j * kTile, p);
    }
    running_sum = sum;
    // Output: o[d] (lanes: rows) = o[d] * alpha + sum_j p_j v_j[d], 8 dims at a time.
    for (int d0 = 0; d0 < hd; d0 += 8) {
      __m512 acc[8];
      for (int u = 0; u < 8; ++u)
        acc[u] = _mm512_mul_ps(_mm512_loadu_ps(ot + (d0 + u) * kTile), alpha);
      for (int j = 0; j < n; ++j) {
        const __m512 p = _mm512_loadu_ps(probs + j * kTile);
        const float* v = values[j] + d0;
        for (int u = 0; u < 8; ++u) acc[u] = _mm512_fmadd_ps(p, _mm512_set1_ps(v[u]), acc[u]);
      }
      for (int u = 0; u < 8; ++u) _mm512_storeu_ps(ot + (d0 + u) * kTile, acc[u]);
    }
  }
  // out[i][d] = o[d][i] / sum[i].
  alignas(64) float inv_sum[kTile];
  _mm512_store_ps(inv_sum, _mm512_div_ps(_mm512_set1_ps(1.0f), running_sum));
  for (int i = 0; i < t.rows; ++i) {
    float* o = t.out + i * t.out_width;
    for (int d = 0; d < hd; ++d) o[d] = ot[d * kTile + i] * inv_sum[i];
  }
}

// Sums each of 16 vectors over its lanes: lane j of the result is the sum of
// v[j]'s lanes (pairwise shuffles, 15 adds).
BS_TARGET_AVX512 inline __m512 TransposeReduce16(const __m512* v) {
  __m512 t[8], u[4], w[2];
  for (int i = 0; i < 8; ++i) {
    t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                         _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  }
  // Lane 4c+e of u[g]: key 4g+e summed over 128-bit chunk c.
  for (int g = 0; g < 4; ++g) {
    u[g] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * g], t[2 * g + 1], 0x44),
                         _mm512_shuffle_ps(t[2 * g], t[2 * g + 1], 0xEE));
  }
  for (int i = 0; i < 2; ++i) {
    w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xDD));
  }
  return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88),
                       _mm512_shuffle_f32x4(w[0], w[1], 0xDD));
}

template <typename KvT>
struct DecodeRow {
  const float* q;        // head_dim floats
  const int32_t* pages;  // the sequence's page table
  const KvT* k_cache;
  const KvT* v_cache;
  int64_t page_stride;
  int64_t head_offset;  // h * page_size * head_dim
  int page_size;
  int head_dim;  // a multiple of 16, at most kMaxDecodeHeadDim
  int64_t n_keys;
  float scale;
  float* out;  // head_dim floats
};
constexpr int kMaxDecodeHeadDim = 256;

// One query row against its n_keys cached keys: scores 16 keys at a time
// (one vector per key over head_dim, then a transposing reduction), a
// vectorized softmax over the score vector, and the weighted sum of values.
template <typename KvT>
BS_TARGET_AVX512 void DecodeRowAvx512(const DecodeRow<KvT>& t, std::vector<float>& scores) {
  const int chunks = t.head_dim / 16;
  const int64_t row_lines = (int64_t{t.head_dim} * sizeof(KvT) + 63) / 64;  // per key
  const bool pow2 = (t.page_size & (t.page_size - 1)) == 0;
  const int shift = pow2 ? __builtin_ctz(static_cast<unsigned>(t.page_size)) : 0;
  auto offset = [&](int64_t key) {
    const int64_t page = pow2 ? key >> shift : key / t.page_size;
    const int64_t slot = pow2 ? key & (t.page_size - 1) : key % t.page_size;
    return int64_t{t.pages[page]} * t.page_stride + t.head_offset + slot * t.head_dim;
  };
  __m512 q[kMaxDecodeHeadDim / 16];
  for (int c = 0; c < chunks; ++c) q[c] = _mm512_loadu_ps(t.q + 16 * c);
  const int64_t n = t.n_keys;
  scores.resize((n + 15) / 16 * 16);
  const __m512 scale = _mm512_set1_ps(t.scale);
  __m512 max_v = _mm512_set1_ps(-INFINITY);
  __m512 acc[16];
  for (int64_t block = 0; block < n; block += 16) {
    const int valid = static_cast<int>(std::min<int64_t>(16, n - block));
    // The next block's keys live in another 4 KiB page (one cache page holds
    // page_size keys of one head), where the hardware prefetcher stops:
    // prefetch them while this block is computed.
    const int next_valid = static_cast<int>(std::min<int64_t>(16, n - block - 16));
    for (int j = 0; j < next_valid; ++j) {
      const char* k = reinterpret_cast<const char*>(t.k_cache + offset(block + 16 + j));
      for (int64_t c = 0; c < row_lines; ++c) _mm_prefetch(k + 64 * c, _MM_HINT_T0);
    }
    for (int j = 0; j < 16; ++j) {
      const KvT* k = t.k_cache + offset(block + std::min(j, valid - 1));
      __m512 a = _mm512_mul_ps(q[0], LoadKv16(k));
      for (int c = 1; c < chunks; ++c) a = _mm512_fmadd_ps(q[c], LoadKv16(k + 16 * c), a);
      acc[j] = a;
    }
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
    const __m512 s = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), mask,
                                        _mm512_mul_ps(TransposeReduce16(acc), scale));
    _mm512_storeu_ps(scores.data() + block, s);
    max_v = _mm512_max_ps(max_v, s);
  }
  const __m512 max_s = _mm512_set1_ps(ReduceMax512(max_v));
  __m512 sum_v = _mm512_setzero_ps();
  for (int64_t block = 0; block < n; block += 16) {
    const int valid = static_cast<int>(std::min<int64_t>(16, n - block));
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
    const __m512 p = _mm512_maskz_mov_ps(
        mask, Exp512(_mm512_sub_ps(_mm512_loadu_ps(scores.data() + block), max_s)));
    _mm512_storeu_ps(scores.data() + block, p);
    sum_v = _mm512_add_ps(sum_v, p);
  }
  // Two sets of accumulators (even and odd keys) hide the FMA latency.
  __m512 o0[kMaxDecodeHeadDim / 16], o1[kMaxDecodeHeadDim / 16];
  for (int c = 0; c < chunks; ++c) o0[c] = o1[c] = _mm512_setzero_ps();
  int64_t j = 0;
  constexpr int kPrefetchAhead = 16;  // keys
  for (; j + 2 <= n; j += 2) {
    const KvT* v0 = t.v_cache + offset(j);
    const KvT* v1 = t.v_cache + offset(j + 1);
    for (int64_t ahead = j + kPrefetchAhead; ahead < std::min(n, j + kPrefetchAhead + 2); ++ahead) {
      const char* v = reinterpret_cast<const char*>(t.v_cache + offset(ahead));
      for (int64_t c = 0; c < row_lines; ++c) _mm_prefetch(v + 64 * c, _MM_HINT_T0);
    }
    const __m512 p0 = _mm512_set1_ps(scores[j]), p1 = _mm512_set1_ps(scores[j + 1]);
    for (int c = 0; c < chunks; ++c) {
      o0[c] = _mm512_fmadd_ps(p0, LoadKv16(v0 + 16 * c), o0[c]);
      o1[c] = _mm512_fmadd_ps(p1, LoadKv16(v1 + 16 * c), o1[c]);
    }
  }
  if (j < n) {
    const KvT* v0 = t.v_cache + offset(j);
    const __m512 p0 = _mm512_set1_ps(scores[j]);
    for (int c = 0; c < chunks; ++c) o0[c] = _mm512_fmadd_ps(p0, LoadKv16(v0 + 16 * c), o0[c]);
  }
  const __m512 inv_sum = _mm512_set1_ps(1.0f / ReduceAdd512(sum_v));
  for (int c = 0; c < chunks; ++c) {
    _mm512_storeu_ps(t.out + 16 * c, _mm512_mul_ps(_mm512_add_ps(o0[c], o1[c]), inv_sum));
  }
}

template <typename KvT>
void AttentionImpl(ThreadPool& pool, const Tensor& qkv, const KvCacheLayer& cache,
                   const AttentionLayout& layout, int num_heads, int head_dim, const Tensor& out) {
  const int64_t rows = qkv.rows();
  const int64_t qkv_width = int64_t{3} * num_heads * head_dim;
  const int64_t out_width = int64_t{num_heads} * head_dim;
  CHECK_EQ(qkv.cols(), qkv_width);
  CHECK_EQ(out.rows(), rows);
  CHECK_EQ(out.cols(), out_width);
  CHECK_EQ(cache.k.rank(), 4);
  const int64_t num_pages = cache.k.dim(0);
  const int page_size = cache.page_size;
  CHECK_EQ(cache.k.dim(1), num_heads);
  CHECK_EQ(cache.k.dim(2), page_size);
  CHECK_EQ(cache.k.dim(3), head_dim);
  CHECK_EQ(layout.slot_mapping.numel(), rows);
  const int32_t* slots = layout.slot_mapping.data<int32_t>();
  const int32_t* starts = layout.query_starts.data<int32_t>();
  const int32_t* kv_lens = layout.kv_lens.data<int32_t>();
  const int32_t* page_table = layout.page_table.data<int32_t>();
  KvT* k_cache = cache.k.data<KvT>();
  KvT* v_cache = cache.v.data<KvT>();
  const int64_t page_stride = int64_t{num_heads} * page_size * head_dim;
  const int64_t head_stride = int64_t{page_size} * head_dim;
  CHECK_EQ(starts[layout.num_seqs], rows);

  // 1. Append the new keys and values.
  pool.ParallelFor(rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t slot = slots[r];
      const int64_t page = slot / page_size;
      const int64_t offset = slot % page_size;
      CHECK(page >= 0 && page < num_pages) << "KV slot " << slot << " outside the cache";
      const float* row = qkv.data<float>() + r * qkv_width;
      for (int h = 0; h < num_heads; ++h) {
        const int64_t dst = page * page_stride + h * head_stride + offset * head_dim;
        StoreKv(row + (int64_t{h} * 3 + 1) * head_dim, head_dim, k_cache + dst);
        StoreKv(row + (int64_t{h} * 3 + 2) * head_dim, head_dim, v_cache + dst);
      }
    }
  });

  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const bool tiled = head_dim % 8 == 0 && DetectCpuFeatures().avx512;

  // 2a. Prefill: sequences with several new rows, tiles of 16 rows.
  struct TileTask {
    int seq;
    int64_t first_row;
    int rows;
  };
  std::vector<TileTask> tiles;
  if (tiled) {
    for (int s = 0; s < layout.num_seqs; ++s) {
      const int64_t q_len = starts[s + 1] - starts[s];
      if (q_len < 2) continue;
      // Last tiles (the most keys) first, for balance.
      for (int64_t r = (q_len - 1) / kTile * kTile; r >= 0; r -= kTile) {
        tiles.push_back({s, starts[s] + r, static_cast<int>(std::min<int64_t>(kTile, q_len - r))});
      }
    }
    std::stable_sort(tiles.begin(), tiles.end(), [&](const TileTask& a, const TileTask& b) {
      return kv_lens[a.seq] - (starts[a.seq + 1] - a.first_row) >
             kv_lens[b.seq] - (starts[b.seq + 1] - b.first_row);
    });
    const int64_t tile_tasks = static_cast<int64_t>(tiles.size()) * num_heads;
    pool.ParallelFor(tile_tasks, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> scratch(PrefillScratchFloats(head_dim));
      for (int64_t task = begin; task < end; ++task) {
        const TileTask& tile = tiles[task / num_heads];
        const int h = static_cast<int>(task % num_heads);
        const int s = tile.seq;
        const int64_t q_len = starts[s + 1] - starts[s];
        PrefillTile<KvT> t{
            .qkv = qkv.data<float>(),
            .qkv_width = qkv_width,
            .first_row = tile.first_row,
            .rows = tile.rows,
            .first_position = kv_lens[s] - q_len + (tile.first_row - starts[s]),
            .pages = page_table + int64_t{s} * layout.max_pages_per_seq,
            .k_cache = k_cache,
            .v_cache = v_cache,
            .page_stride = page_stride,
            .head_offset = h * head_stride,
            .page_size = page_size,
            .head = h,
            .head_dim = head_dim,
            .scale = scale,
            .out = out.data<float>() + tile.first_row * out_width + int64_t{h} * head_dim,
            .out_width = out_width};
        PrefillTileAvx512(t, scratch.data());
      }
    });
  }

  // 2b. One task per (query row, head) for the other rows.
  std::vector<int32_t> row_seq;
  row_seq.reserve(rows);
  for (int s = 0; s < layout.num_seqs; ++s) {
    if (tiled && starts[s + 1] - starts[s] >= 2) continue;
    for (int32_t r = starts[s]; r < starts[s + 1]; ++r) row_seq.push_back(r);
  }
  std::vector<int32_t> seq_of_row(rows);
  for (int s = 0; s < layout.num_seqs; ++s) {
    for (int32_t r = starts[s]; r < starts[s + 1]; ++r) seq_of_row[r] = s;
  }
  const int64_t row_tasks = static_cast<int64_t>(row_seq.size()) * num_heads;
  const bool fast_rows =
      head_dim % 16 == 0 && head_dim <= kMaxDecodeHeadDim && DetectCpuFeatures().avx512;
  pool.ParallelFor(row_tasks, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    std::vector<float> acc(head_dim);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t r = row_seq[task / num_heads];
      const int h = static_cast<int>(task % num_heads);
      const int s = seq_of_row[r];
      const int64_t q_len = starts[s + 1] - starts[s];
      const int64_t position = kv_lens[s] - q_len + (r - starts[s]);
      const int64_t n_keys = position + 1;
      const int32_t* pages = page_table + int64_t{s} * layout.max_pages_per_seq;
      const float* q = qkv.data<float>() + r * qkv_width + int64_t{h} * 3 * head_dim;
      if (fast_rows) {
        DecodeRowAvx512<KvT>({.q = q,
                              .pages = pages,
                              .k_cache = k_cache,
                              .v_cache = v_cache,
                              .page_stride = page_stride,
                              .head_offset = h * head_stride,
                              .page_size = page_size,
                              .head_dim = head_dim,
                              .n_keys = n_keys,
                              .scale = scale,
                              .out = out.data<float>() + r * out_width + int64_t{h} * head_dim},
                             scores);
        continue;
      }
      scores.resize(n_keys);
      float max_score = -INFINITY;
      for (int64_t j = 0; j < n_keys; ++j) {
        const int64_t page = pages[j / page_size];
        const KvT* key =
            k_cache + page * page_stride + h * head_stride + (j % page_size) * head_dim;
        float dot = 0.0f;
        if constexpr (std::is_same_v<KvT, float>) {
          dot = Dot(q, key, head_dim);
        } else {
          for (int d = 0; d < head_dim; ++d) dot += q[d] * KvToF32(key[d]);
        }
        scores[j] = dot * scale;
        max_score = std::max(max_score, scores[j]);
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < n_keys; ++j) {
        scores[j] = std::exp(scores[j] - max_score);
        sum += scores[j];
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j = 0; j < n_keys; ++j) {
        const int64_t page = pages[j / page_size];
        const KvT* value =
            v_cache + page * page_stride + h * head_stride + (j % page_size) * head_dim;
        const float weight = scores[j];
#pragma omp simd
        for (int i = 0; i < head_dim; ++i) acc[i] += weight * KvToF32(value[i]);
      }
      float* o = out.data<float>() + r * out_width + int64_t{h} * head_dim;
      const float inv_sum = 1.0f / sum;
      for (int i = 0; i < head_dim; ++i) o[i] = acc[i] * inv_sum;
    }
  });
}

}  // namespace

void Attention(ThreadPool& pool, const Tensor& qkv, const KvCacheLayer& cache,
               const AttentionLayout& layout, int num_heads, int head_dim, const Tensor& out) {
  CHECK(cache.v.dtype() == cache.k.dtype()) << "K and V caches of different types";
  switch (cache.k.dtype()) {
    case DType::kF32:
      AttentionImpl<float>(pool, qkv, cache, layout, num_heads, head_dim, out);
      return;
    case DType::kF16:
      AttentionImpl<uint16_t>(pool, qkv, cache, layout, num_heads, head_dim, out);
      return;
    default:
      LOG(FATAL) << "KV cache of " << DTypeName(cache.k.dtype()) << " (F32 or F16 only)";
  }
}

}  // namespace blockserve::cpu
