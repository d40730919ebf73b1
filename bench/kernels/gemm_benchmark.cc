// Micro-benchmarks of the CPU MatMul paths on the shapes decoding produces,
// next to the machine's measured arithmetic peak.
//
//   build/bench/kernels/gemm_benchmark --benchmark_min_time=0.5
//
// BLOCKSERVE_BENCH_THREADS=N sets the pool size (default 2, both cores);
// 1 gives what one single-threaded service process gets.
//
// Counters: GFLOPs (2 * M * N * K per call, per second). The Peak*
// benchmarks run independent FMA (F32) or vdpbf16ps (BF16) chains out of
// registers on every thread of the pool, giving the ceiling each GEMM is
// compared against (docs/benchmarks.md).
#include <immintrin.h>

#include <random>
#include <vector>

#include "bench/kernels/bench_threads.h"
#include "bench/kernels/decode_shapes.h"
#include "bench/kernels/random_values.h"
#include "benchmark/benchmark.h"
#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/cpu/vec_math.h"

namespace blockserve {
namespace {

const int kThreads = BenchThreads();
constexpr int64_t kSlices = 64;  // of the peak benchmarks' work

BS_TARGET_AVX512 float FmaChains(int64_t iterations) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-4f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return cpu::ReduceAdd512(sum);
}

BS_TARGET_AVX512_BF16 float DpBf16Chains(int64_t iterations) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_setzero_ps();
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80);  // 1.0
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3800);  // tiny
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return cpu::ReduceAdd512(sum);
}

// FLOPs per iteration: 12 chains x 16 lanes x 2 (FMA) or x 4 (2 bf16 products + adds).
void BM_PeakF32Fma(benchmark::State& state) {
  ThreadPool pool(kThreads);
  constexpr int64_t kIterations = 1 << 22;
  for (auto _ : state) {
    // Many slices claimed in turn, so that a thread that starts late (a
    // virtual CPU woken up by the hypervisor) does not double the time.
    pool.ParallelFor(kSlices, 1, [&](int64_t begin, int64_t end) {
      benchmark::DoNotOptimize(FmaChains(kIterations * kThreads / kSlices * (end - begin)));
    });
  }
  state.counters["GFLOPs"] = benchmark::Counter(
      static_cast<double>(kIterations) * 12 * 16 * 2 * kThreads,
      benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void BM_PeakBf16Dot(benchmark::State& state) {
  if (!cpu::DetectCpuFeatures().avx512_bf16) {
    state.SkipWithError("no AVX-512 BF16");
    return;
  }
  ThreadPool pool(kThreads);
  constexpr int64_t kIterations = 1 << 22;
  for (auto _ : state) {
    pool.ParallelFor(kSlices, 1, [&](int64_t begin, int64_t end) {
      benchmark::DoNotOptimize(DpBf16Chains(kIterations * kThreads / kSlices * (end - begin)));
    });
  }
  state.counters["GFLOPs"] = benchmark::Counter(
      static_cast<double>(kIterations) * 12 * 16 * 4 * kThreads,
      benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// state.range: M, K, N, weight dtype (0 = F32 packed, 1 = BF16 packed).
void BM_MatMul(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const DType dtype = state.range(3) == 0 ? DType::kF32 : DType::kBF16;
  auto backend = *CreateBackend({.device = "cpu", .threads = kThreads});
  const auto x_host = RandomNormal(m * k, 1, 0.1f);
  const auto w_host = RandomNormal(n * k, 2, 0.1f);
  Tensor x = *backend->Empty(DType::kF32, {m, k});
  backend->CopyToDevice(x_host.data(), x);
  Tensor w = *backend->Empty(dtype, {n, k});
  std::vector<uint16_t> w16(n * k);
  if (dtype == DType::kF32) {
    backend->CopyToDevice(w_host.data(), w);
  } else {
    ConvertFromF32(dtype, w_host.data(), w16.data(), w16.size());
    backend->CopyToDevice(w16.data(), w);
  }
  w = *backend->PrepareMatMulWeight(w);
  Tensor y = *backend->Empty(DType::kF32, {m, n});
  for (auto _ : state) {
    backend->MatMul(x, w, Tensor(), Activation::kNone, false, y);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPs"] = benchmark::Counter(
      2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void AddDecodeShapes(benchmark::internal::Benchmark* b) {
  for (const DecodeShape& shape : DecodeShapes()) {
    b->Args({shape.m, shape.k, shape.n, shape.bf16 ? 1 : 0});
  }
}

BENCHMARK(BM_PeakF32Fma)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PeakBf16Dot)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatMul)
    ->Apply(AddDecodeShapes)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond)
    ->ArgNames({"M", "K", "N", "bf16"});

}  // namespace
}  // namespace blockserve

BENCHMARK_MAIN();
