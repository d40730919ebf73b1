// The GEMM library adapters of gemm_library_benchmark compute y = x * w^T
// for w in PyTorch's [n, k] layout, F32 and (where the library has one) BF16,
// and report a library without the product as kUnimplemented. Built once per
// adapter (gemm_library_test_<name>), like the benchmark.
#include "bench/kernels/gemm_libraries/gemm_library.h"

#include <vector>

#include "bench/kernels/gemm_libraries/gemm_check.h"
#include "bench/kernels/random_values.h"
#include "gtest/gtest.h"

namespace blockserve {
namespace {

// Runs the product twice (a prepared call is reused by the benchmark) and
// returns the relative error of the second result, or -1 when the library
// reports it has no such product.
double ErrorOf(const GemmProblem& problem) {
  const auto x = RandomNormal(problem.m * problem.k, 7, 0.5f);
  const auto w = RandomNormal(problem.n * problem.k, 8, 0.5f);
  auto call = PrepareGemm(problem, w.data());
  if (absl::IsUnimplemented(call.status())) return -1;
  EXPECT_TRUE(call.ok()) << call.status();
  if (!call.ok()) return 1e9;
  std::copy(x.begin(), x.end(), (*call)->x());
  (*call)->Run();
  std::fill((*call)->y(), (*call)->y() + problem.m * problem.n, 1e6f);
  (*call)->Run();
  return GemmRelativeError(problem, x.data(), w.data(), (*call)->y());
}

struct Shape {
  int64_t m, k, n;
};

// Row counts across tile edges, depths that are not a power of two, and
// widths that are multiples of 64 (libxsmm's panels).
const Shape kShapes[] = {{1, 64, 128}, {5, 96, 192}, {13, 200, 320}, {16, 512, 1536}};

TEST(GemmLibraryTest, F32ProductIsXTimesWTransposed) {
  for (const Shape& s : kShapes) {
    for (int threads : {1, 2}) {
      const GemmProblem problem = {.m = s.m, .k = s.k, .n = s.n, .threads = threads};
      const double error = ErrorOf(problem);
      EXPECT_GE(error, 0) << GemmLibraryName() << " has no F32 GEMM";
      EXPECT_LT(error, GemmTolerance(problem))
          << GemmLibraryName() << " m=" << s.m << " k=" << s.k << " n=" << s.n;
    }
  }
}

TEST(GemmLibraryTest, Bf16ProductMatchesTheRoundedOperandsOrIsUnimplemented) {
  for (const Shape& s : kShapes) {
    const GemmProblem problem = {.m = s.m, .k = s.k, .n = s.n, .bf16_weights = true, .threads = 2};
    const double error = ErrorOf(problem);
    if (error < 0) {
      EXPECT_FALSE(BLOCKSERVE_GEMM_LIBRARY_HAS_BF16) << GemmLibraryName();
      continue;
    }
    EXPECT_LT(error, GemmTolerance(problem))
        << GemmLibraryName() << " m=" << s.m << " k=" << s.k << " n=" << s.n;
  }
}

TEST(GemmLibraryTest, NameSaysWhichLibrary) { EXPECT_STRNE(GemmLibraryName(), ""); }

}  // namespace
}  // namespace blockserve
