// The libraries comparison end to end, on one small shape: two of the
// gemm_library_benchmark executables write Google Benchmark JSON (each
// checks its product before timing it), and tools/bench/gemm_library_table.py
// turns them into the table of docs/benchmarks.md, with "-" where a library
// has no BF16 product.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/subprocess.h"

namespace blockserve {
namespace {

using ::blockserve::testing::RunProcess;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(GemmLibraryTableTest, TwoLibrariesSideBySide) {
  const std::string dir = ::testing::TempDir() + "/gemm_library_table_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::pair<const char*, const char*> runs[] = {
      {"blockserve", BLOCKSERVE_GEMM_BENCHMARK_BLOCKSERVE},
      {"blis", BLOCKSERVE_GEMM_BENCHMARK_BLIS}};
  for (const auto& [variant, exe] : runs) {
    auto result = RunProcess({exe, "--benchmark_filter=BM_Gemm/M:8/K:512/N:512/",
                              "--benchmark_min_time=0.01", "--benchmark_repetitions=2",
                              "--benchmark_report_aggregates_only=true", "--benchmark_format=json"},
                             "", /*timeout_s=*/120);
    ASSERT_EQ(result.exit_code, 0) << exe << "\n" << result.err;
    EXPECT_THAT(result.out, Not(HasSubstr("wrong result")));
    std::ofstream(dir + "/gemm_library_" + variant + "_1.json") << result.out;
  }
  const std::string script =
      std::string(BLOCKSERVE_TEST_DATA_DIR) + "/../../tools/bench/gemm_library_table.py";
  auto table = RunProcess({"/usr/bin/python3", script, dir}, "", /*timeout_s=*/60);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("| Blockserve | BLIS | Blockserve / fastest other |"));
  // F32: both libraries have a figure, and the ratio follows.
  EXPECT_THAT(table.out,
              ContainsRegex(R"(\| 8 \| 512 \| 512 \| F32 \| [0-9,]+ \| [0-9,]+ \| [0-9.]+x \|)"));
  // BF16: BLIS has none.
  EXPECT_THAT(table.out, ContainsRegex(R"(\| 8 \| 512 \| 512 \| BF16 \| [0-9,]+ \| - \| nanx \|)"));
  EXPECT_THAT(table.out, HasSubstr("- F32: Blockserve fastest on"));
  EXPECT_THAT(table.out, HasSubstr("- BLIS: BLIS 0.9"));
  std::filesystem::remove_all(dir);
}

TEST(GemmLibraryTableTest, NoBlockserveRunIsAnError) {
  const std::string dir =
      ::testing::TempDir() + "/gemm_library_table_empty_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const std::string script =
      std::string(BLOCKSERVE_TEST_DATA_DIR) + "/../../tools/bench/gemm_library_table.py";
  auto table = RunProcess({"/usr/bin/python3", script, dir}, "", /*timeout_s=*/60);
  EXPECT_NE(table.exit_code, 0);
  EXPECT_THAT(table.err, HasSubstr("no gemm_library_blockserve_*.json"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace blockserve
