// Micro-benchmarks of the CPU backend's other ops on the shapes a forward
// pass produces (GEMMs: gemm_benchmark.cc):
//  - Attention over a paged KV cache: decode (one query row per sequence
//    against kv_len cached keys, batch B) and causal prefill (q_len rows of
//    one sequence), heads x head_dim of the 512-wide models (8 x 64);
//  - LayerNorm, Rotary, CopyRows (embedding lookup), Sample (greedy and
//    temperature), LogSoftmax and TargetLogProbs over the 50304-word
//    vocabulary.
//
//   build/bench/kernels/ops_benchmark --benchmark_min_time=0.5
//
// Counters: GFLOPs for attention (4 * heads * head_dim per query-key pair:
// q.k and p.v), GB/s of KV cache read for decode, rows/s elsewhere;
// BM_MemoryRead gives the read bandwidth the decode-time roofline uses.
#include <immintrin.h>

#include <random>
#include <vector>

#include "bench/kernels/bench_threads.h"
#include "bench/kernels/random_values.h"
#include "benchmark/benchmark.h"
#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/vec_math.h"

namespace blockserve {
namespace {

const int kThreads = BenchThreads();
constexpr int kHeads = 8;
constexpr int kHeadDim = 64;
constexpr int kPageSize = 16;
constexpr int kVocab = 50304;

Tensor UploadI32(Backend& backend, const std::vector<int32_t>& values) {
  Tensor t = *backend.Empty(DType::kI32, {static_cast<int64_t>(values.size())});
  backend.CopyToDevice(values.data(), t);
  return t;
}

// `seqs` sequences of which each appends `q_len` rows to reach `kv_len`
// entries: the layout and a cache whose first kv_len - q_len entries per
// sequence are filled with random keys and values.
struct AttentionCase {
  Tensor qkv, out;
  KvCacheLayer cache;
  AttentionLayout layout;
};

AttentionCase MakeAttentionCase(Backend& backend, int seqs, int q_len, int kv_len,
                                DType kv_dtype = DType::kF32) {
  AttentionCase c;
  const int pages_per_seq = (kv_len + kPageSize - 1) / kPageSize;
  const int64_t pages = int64_t{seqs} * pages_per_seq;
  const int64_t rows = int64_t{seqs} * q_len;
  const int64_t cache_elems = pages * kHeads * kPageSize * kHeadDim;
  c.cache.page_size = kPageSize;
  c.cache.k = *backend.Empty(kv_dtype, {pages, kHeads, kPageSize, kHeadDim});
  c.cache.v = *backend.Empty(kv_dtype, {pages, kHeads, kPageSize, kHeadDim});
  for (Tensor* t : {&c.cache.k, &c.cache.v}) {
    const std::vector<float> values = RandomNormal(cache_elems, t == &c.cache.k ? 1 : 2, 1.0f);
    std::vector<char> bytes(cache_elems * DTypeSize(kv_dtype));
    ConvertFromF32(kv_dtype, values.data(), bytes.data(), values.size());
    backend.CopyToDevice(bytes.data(), *t);
  }
  c.qkv = *backend.Empty(DType::kF32, {rows, 3 * kHeads * kHeadDim});
  backend.CopyToDevice(RandomNormal(rows * 3 * kHeads * kHeadDim, 3, 1.0f).data(), c.qkv);
  c.out = *backend.Empty(DType::kF32, {rows, kHeads * kHeadDim});
  std::vector<int32_t> starts, lens, table, slots;
  for (int s = 0; s < seqs; ++s) {
    starts.push_back(s * q_len);
    lens.push_back(kv_len);
    for (int p = 0; p < pages_per_seq; ++p) table.push_back(s * pages_per_seq + p);
    for (int i = 0; i < q_len; ++i) {
      const int position = kv_len - q_len + i;
      slots.push_back((s * pages_per_seq + position / kPageSize) * kPageSize +
                      position % kPageSize);
    }
  }
  starts.push_back(seqs * q_len);
  c.layout.num_seqs = seqs;
  c.layout.max_query_len = q_len;
  c.layout.max_kv_len = kv_len;
  c.layout.max_pages_per_seq = pages_per_seq;
  c.layout.query_starts = UploadI32(backend, starts);
  c.layout.kv_lens = UploadI32(backend, lens);
  c.layout.page_table = UploadI32(backend, table);
  c.layout.slot_mapping = UploadI32(backend, slots);
  return c;
}

// range: batch, kv_len, cache entries (0: F32, 1: F16). One new row per
// sequence.
void BM_AttentionDecode(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const int kv_len = static_cast<int>(state.range(1));
  const DType kv_dtype = state.range(2) == 0 ? DType::kF32 : DType::kF16;
  auto backend = *CreateBackend({.device = "cpu", .threads = kThreads});
  AttentionCase c = MakeAttentionCase(*backend, batch, 1, kv_len, kv_dtype);
  for (auto _ : state) {
    backend->Attention(c.qkv, c.cache, c.layout, kHeads, kHeadDim, c.out);
    benchmark::ClobberMemory();
  }
  const double pairs = static_cast<double>(batch) * kv_len * kHeads;
  state.counters["GFLOPs"] =
      benchmark::Counter(pairs * kHeadDim * 4, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
  state.counters["KV_GBps"] = benchmark::Counter(pairs * kHeadDim * 2 * DTypeSize(kv_dtype),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

// range: q_len (one sequence, a whole causal prompt).
void BM_AttentionPrefill(benchmark::State& state) {
  const int q_len = static_cast<int>(state.range(0));
  auto backend = *CreateBackend({.device = "cpu", .threads = kThreads});
  AttentionCase c = MakeAttentionCase(*backend, 1, q_len, q_len);
  for (auto _ : state) {
    backend->Attention(c.qkv, c.cache, c.layout, kHeads, kHeadDim, c.out);
    benchmark::ClobberMemory();
  }
  const double pairs = static_cast<double>(q_len) * (q_len + 1) / 2 * kHeads;
  state.counters["GFLOPs"] =
      benchmark::Counter(pairs * kHeadDim * 4, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

void BM_LayerNorm(benchmark::State& state) {
  const int64_t m = state.range(0), d = state.range(1);
  auto backend = *CreateBackend({.device = "cpu", .threads = kThreads});
  Tensor x = *backend->Empty(DType::kF32, {m, d});
  Tensor gamma = *backend->Empty(DType::kF32, {d});
  Tensor beta = *backend->Empty(DType::kF32, {d});
  backend->CopyToDevice(RandomNormal(m * d, 1, 1.0f).data(), x);
  backend->CopyToDevice(RandomNormal(d, 2, 1.0f).data(), gamma);
  backend->CopyToDevice(RandomNormal(d, 3, 1.0f).data(), beta);
  Tensor y = *backend->Empty(DType::kF32, {m, d});
  for (auto _ : state) {
    backend->LayerNorm(x, gamma, beta, 1e-5f, y);
    benchmark::ClobberMemory();
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(m), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Rotary(benchmark::State& state) {
  const int64_t m = state.range(0);
  auto backend = *CreateBackend({.device = "cpu", .threads = kThreads});
  Tensor qkv = *backend->Empty(DType::kF32, {m, 3 * kHeads * kHeadDim});
  backend->CopyToDevice(RandomNormal(m * 3 * kHeads * kHeadDim, 1, 1.0f).data(), qkv);
  std::vector<int32_t> positions(m);
  for (int64_t i = 0; i < m; ++i) positions[i] = static_cast<int32_t>(i);
  Tensor pos = UploadI32(*backend, positions);
  for (auto _ : state) {
    backend->Rotary(qkv, pos, kHeads, kHeadDim, kHeadDim / 4, 10000.0f);
    benchmark::ClobberMemory();
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(m), benchmark::Counter::kIsIterationInvariantRate);
}

// range: rows, width (an embedding lookup from a [50304, width] F32 table).
void BM_CopyRows(benchmark::State& state) {
  const int64_t m = state.range(0), d = state.range(1);
  auto backend = *CreateBackend({.device = "cpu", .threads = kThreads});
  Tensor table = *backend->Empty(DType::kF32, {kVocab, d});
  backend->CopyToDevice(RandomNormal(kVocab * d, 1, 1.0f).data(), table);
  std::vector<int32_t> ids(m);
  std::mt19937 rng(4);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % kVocab);
  Tensor rows = UploadI32(*backend, ids);
  Tensor out = *backend->Empty(DType::kF32, {m, d});
  for (auto _ : state) {
    backend->CopyRows(table, rows, out, Tensor());
    benchmark::ClobberMemory();
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(m), benchmark::Counter::kIsIterationInvariantRate);
}

// range: rows, temperature x 10 (0: greedy). The logprob of the chosen
// token is computed too (a softmax sum per row), as in decoding.
void BM_Sample(benchmark::State& state) {
  const int64_t m = state.range(0);
  const float temperature = static_cast<float>(state.range(1)) / 10.0f;
  auto backend = *CreateBackend({.device = "cpu", .threads = kThreads});
  Tensor logits = *backend->Empty(DType::kF32, {m, kVocab});
  backend->CopyToDevice(RandomNormal(m * kVocab, 1, 3.0f).data(), logits);
  std::vector<SamplingRow> rows(m);
  for (int64_t i = 0; i < m; ++i) rows[i] = {.temperature = temperature, .seed = 7, .position = i};
  Tensor tokens = *backend->Empty(DType::kI32, {m});
  Tensor logprobs = *backend->Empty(DType::kF32, {m});
  for (auto _ : state) {
    backend->Sample(logits, rows, tokens, logprobs);
    benchmark::ClobberMemory();
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(m), benchmark::Counter::kIsIterationInvariantRate);
}

// The memory roofline: the pool's threads summing a buffer of `range` MiB
// (DRAM read bandwidth once it exceeds the last-level cache).
BS_TARGET_AVX512 float SumAvx512(const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
  }
  return cpu::ReduceAdd512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

void BM_MemoryRead(benchmark::State& state) {
  const int64_t floats = state.range(0) * (int64_t{1} << 20) / 4;
  std::vector<float> buffer(floats, 1.0f);
  ThreadPool pool(kThreads);
  const int64_t slices = 64;
  const int64_t per_slice = floats / slices;
  for (auto _ : state) {
    pool.ParallelFor(slices, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        benchmark::DoNotOptimize(SumAvx512(buffer.data() + i * per_slice, per_slice));
      }
    });
  }
  state.counters["GBps"] = benchmark::Counter(static_cast<double>(floats) * 4,
                                              benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}

// range: rows. Scoring's ops over the vocabulary: log-softmax of every row,
// and the log-probability of one target per row.
void BM_LogSoftmax(benchmark::State& state) {
  const int64_t m = state.range(0);
  auto backend = *CreateBackend({.device = "cpu", .threads = kThreads});
  Tensor logits = *backend->Empty(DType::kF32, {m, kVocab});
  backend->CopyToDevice(RandomNormal(m * kVocab, 1, 3.0f).data(), logits);
  Tensor out = *backend->Empty(DType::kF32, {m, kVocab});
  for (auto _ : state) {
    backend->LogSoftmax(logits, out);
    benchmark::ClobberMemory();
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(m), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_TargetLogProbs(benchmark::State& state) {
  const int64_t m = state.range(0);
  auto backend = *CreateBackend({.device = "cpu", .threads = kThreads});
  Tensor logits = *backend->Empty(DType::kF32, {m, kVocab});
  backend->CopyToDevice(RandomNormal(m * kVocab, 1, 3.0f).data(), logits);
  std::vector<int32_t> ids(m);
  for (int64_t i = 0; i < m; ++i) ids[i] = static_cast<int32_t>((i * 7919) % kVocab);
  Tensor targets = UploadI32(*backend, ids);
  Tensor out = *backend->Empty(DType::kF32, {m});
  for (auto _ : state) {
    backend->TargetLogProbs(logits, targets, out);
    benchmark::ClobberMemory();
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(m), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_MemoryRead)
    ->Arg(8)
    ->Arg(256)
    ->ArgName("MiB")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AttentionDecode)
    ->ArgsProduct({{1, 32}, {256, 2176}, {0, 1}})
    ->ArgNames({"batch", "kv_len", "f16"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AttentionPrefill)
    ->Arg(128)
    ->Arg(512)
    ->Arg(2048)
    ->ArgName("q_len")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LayerNorm)
    ->ArgsProduct({{1, 32, 512}, {512}})
    ->ArgNames({"M", "D"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Rotary)->Arg(32)->Arg(2048)->ArgName("M")->UseRealTime()->Unit(
    benchmark::kMicrosecond);
BENCHMARK(BM_CopyRows)
    ->ArgsProduct({{32, 2048}, {512}})
    ->ArgNames({"M", "D"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Sample)
    ->ArgsProduct({{1, 32}, {0, 10}})
    ->ArgNames({"M", "temp_x10"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

BENCHMARK(BM_LogSoftmax)
    ->Arg(1)
    ->Arg(64)
    ->ArgName("M")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TargetLogProbs)
    ->Arg(1)
    ->Arg(64)
    ->ArgName("M")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace blockserve

BENCHMARK_MAIN();
