// Causal attention over a paged KV cache.
//
// First the k and v of every new row are written to their cache slots; then
// each (sequence, head, query row) computes its scores over the sequence's
// cached keys one page at a time, so memory per task is one score vector of
// the sequence's length, never a full query x key matrix.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "shared/common/logging.h"

namespace blockserve::cpu {
namespace {

inline float Dot(const float* a, const float* b, int n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace

void Attention(ThreadPool& pool, const Tensor& qkv, const KvCacheLayer& cache,
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
  float* k_cache = cache.k.data<float>();
  float* v_cache = cache.v.data<float>();
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
        std::memcpy(k_cache + dst, row + (int64_t{h} * 3 + 1) * head_dim, head_dim * sizeof(float));
        std::memcpy(v_cache + dst, row + (int64_t{h} * 3 + 2) * head_dim, head_dim * sizeof(float));
      }
    }
  });

  // 2. One task per (query row, head); rows of all sequences are packed.
  std::vector<int32_t> row_seq(rows);
  for (int s = 0; s < layout.num_seqs; ++s) {
    for (int32_t r = starts[s]; r < starts[s + 1]; ++r) row_seq[r] = s;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  pool.ParallelFor(rows * num_heads, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    std::vector<float> acc(head_dim);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t r = task / num_heads;
      const int h = static_cast<int>(task % num_heads);
      const int s = row_seq[r];
      const int64_t q_len = starts[s + 1] - starts[s];
      const int64_t position = kv_lens[s] - q_len + (r - starts[s]);
      const int64_t n_keys = position + 1;
      const int32_t* pages = page_table + int64_t{s} * layout.max_pages_per_seq;
      const float* q = qkv.data<float>() + r * qkv_width + int64_t{h} * 3 * head_dim;
      scores.resize(n_keys);
      float max_score = -INFINITY;
      for (int64_t j = 0; j < n_keys; ++j) {
        const int64_t page = pages[j / page_size];
        const float* key = k_cache + page * page_stride + h * head_stride + (j % page_size) * head_dim;
        scores[j] = Dot(q, key, head_dim) * scale;
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
        const float* value = v_cache + page * page_stride + h * head_stride + (j % page_size) * head_dim;
        const float weight = scores[j];
#pragma omp simd
        for (int i = 0; i < head_dim; ++i) acc[i] += weight * value[i];
      }
      float* o = out.data<float>() + r * out_width + int64_t{h} * head_dim;
      const float inv_sum = 1.0f / sum;
      for (int i = 0; i < head_dim; ++i) o[i] = acc[i] * inv_sum;
    }
  });
}

}  // namespace blockserve::cpu
