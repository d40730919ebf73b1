// The decode-shaped GEMMs of gemm_benchmark, run through one other library
// (the adapter this executable was linked with: OpenBLAS, BLIS, oneDNN,
// libxsmm, Eigen, or Blockserve's own kernels for the side-by-side run).
// docs/benchmarks.md compares them; tools/bench/paper_benchmarks.sh OUT
// libraries runs them all.
//
//   build/bench/gemm_library_benchmark_onednn --benchmark_min_time=0.2
//
// BLOCKSERVE_BENCH_THREADS=N sets the library's thread count (default 2).
// Every product is checked once against a double-precision reference before
// it is timed: a library that computes something else is reported as an
// error, not as a figure.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/kernels/bench_threads.h"
#include "bench/kernels/decode_shapes.h"
#include "bench/kernels/gemm_libraries/gemm_check.h"
#include "bench/kernels/gemm_libraries/gemm_library.h"
#include "bench/kernels/random_values.h"
#include "benchmark/benchmark.h"

namespace blockserve {
namespace {

void BM_Gemm(benchmark::State& state, DecodeShape shape) {
  const auto x = RandomNormal(shape.m * shape.k, 1, 0.1f);
  const auto w = RandomNormal(shape.n * shape.k, 2, 0.1f);
  const GemmProblem problem = {.m = shape.m,
                               .k = shape.k,
                               .n = shape.n,
                               .bf16_weights = shape.bf16,
                               .threads = BenchThreads()};
  auto call = PrepareGemm(problem, w.data());
  if (!call.ok()) {
    state.SkipWithError(std::string(call.status().message()).c_str());
    return;
  }
  GemmCall& gemm = **call;
  std::copy(x.begin(), x.end(), gemm.x());
  gemm.Run();
  const double error = GemmRelativeError(problem, x.data(), w.data(), gemm.y());
  if (!(error < GemmTolerance(problem))) {
    state.SkipWithError(absl::StrCat("wrong result: relative error ", error).c_str());
    return;
  }
  for (auto _ : state) {
    gemm.Run();
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPs"] = benchmark::Counter(2.0 * shape.m * shape.n * shape.k,
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}

}  // namespace
}  // namespace blockserve

int main(int argc, char** argv) {
  using blockserve::DecodeShape;
  for (const DecodeShape& shape : blockserve::DecodeShapes()) {
    // The argument names of gemm_benchmark's BM_MatMul, so rows match.
    const std::string name = absl::StrCat("BM_Gemm/M:", shape.m, "/K:", shape.k, "/N:", shape.n,
                                          "/bf16:", shape.bf16 ? 1 : 0);
    benchmark::RegisterBenchmark(name.c_str(), blockserve::BM_Gemm, shape)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::AddCustomContext("gemm_library", blockserve::GemmLibraryName());
  benchmark::AddCustomContext("threads", std::to_string(blockserve::BenchThreads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
