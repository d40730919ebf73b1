// blockserve bench --engine as a user runs it, on tiny fixture models with
// tiny lengths: the JSON fields of a single point (one object on the last
// line) and of a sweep (an array last), the --out file, usage errors, and
// tools/bench/plot_bench.py turning that JSON into PNG charts. The --gateway
// target runs against a real stack in tests/integration/bench_gateway_test.cc.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/util/subprocess.h"

namespace blockserve {
namespace {

using ::blockserve::testing::LastLine;
using ::blockserve::testing::RunBlockserve;
using ::blockserve::testing::RunProcess;
using ::testing::HasSubstr;

std::string Fixture(const std::string& name) {
  return std::string(BLOCKSERVE_TEST_DATA_DIR) + "/models/" + name;
}

std::string TempDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name + "_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// The fields every point has, whatever the target (docs/benchmarks.md).
void ExpectPointFields(const nlohmann::json& point, int prompt_len, int gen_len, int batch) {
  for (const char* field :
       {"generated_tokens_per_s", "total_tokens_per_s", "ttft_s", "kv_bytes_per_seq", "ttft", "itl",
        "elapsed_s", "generated_tokens", "peak_rss_bytes", "batch", "prompt_len", "gen_len",
        "model", "kind", "target"}) {
    EXPECT_TRUE(point.contains(field)) << field << " missing in " << point.dump();
  }
  EXPECT_EQ(point["prompt_len"], prompt_len);
  EXPECT_EQ(point["gen_len"], gen_len);
  EXPECT_EQ(point["batch"], batch);
  EXPECT_EQ(point["generated_tokens"], int64_t{gen_len} * batch);
  EXPECT_GT(point["generated_tokens_per_s"].get<double>(), 0);
  // Total counts the prompt tokens too, over the same time.
  EXPECT_NEAR(point["total_tokens_per_s"].get<double>(),
              point["generated_tokens_per_s"].get<double>() * (prompt_len + gen_len) / gen_len,
              1e-6 * point["total_tokens_per_s"].get<double>());
  EXPECT_GT(point["ttft_s"].get<double>(), 0);
  for (const char* p : {"p50", "p90", "p99", "mean"}) {
    EXPECT_TRUE(point["ttft"].contains(p));
    EXPECT_TRUE(point["itl"].contains(p));
  }
  EXPECT_LE(point["ttft"]["p50"].get<double>(), point["ttft"]["p99"].get<double>());
}

TEST(BenchCommandTest, EngineSinglePointPrintsOneJsonObjectLast) {
  for (const char* model : {"block_l4_r2", "vanilla_parallel_rot025"}) {
    auto result =
        RunBlockserve({"bench", "--engine", "--model", Fixture(model), "--prompt-len", "8",
                       "--gen-len", "6", "--batch", "3", "--threads", "1", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_THAT(result.err, HasSubstr("bench: warm-up"));  // progress on stderr
    const nlohmann::json point = nlohmann::json::parse(LastLine(result.out));
    ASSERT_TRUE(point.is_object()) << point.dump();
    ExpectPointFields(point, 8, 6, 3);
    EXPECT_EQ(point["target"], "engine");
    EXPECT_GT(point["kv_bytes_per_seq"].get<int64_t>(), 0);
    EXPECT_GT(point["peak_rss_bytes"].get<int64_t>(), 0);
    EXPECT_EQ(point["weight_dtype"], "f32");
  }
}

TEST(BenchCommandTest, BlockKvPerSequenceGrowsPerBlockNotPerToken) {
  // block_l4_r2 has blocks of 4 tokens: 12+4, 16+4 and 44+4 tokens are 4, 5
  // and 12 blocks, so the KV bytes grow by 8 block entries from the first to
  // the last and by one from the first to the second (the token decoder's
  // one-block cache is the same for all).
  auto run = [](int prompt_len) {
    auto result = RunBlockserve({"bench", "--engine", "--model", Fixture("block_l4_r2"),
                                 "--prompt-len", std::to_string(prompt_len), "--gen-len", "4",
                                 "--no-warmup", "--threads", "1", "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return nlohmann::json::parse(LastLine(result.out))["kv_bytes_per_seq"].get<int64_t>();
  };
  const int64_t kv12 = run(12), kv16 = run(16), kv44 = run(44);
  EXPECT_GT(kv16, kv12);
  EXPECT_EQ(kv44 - kv12, 8 * (kv16 - kv12));
}

TEST(BenchCommandTest, AnF16KvCacheHalvesTheLongLivedCache) {
  auto run = [](const char* model, const char* kv_dtype) {
    auto result = RunBlockserve({"bench", "--engine", "--model", Fixture(model), "--prompt-len",
                                 "16", "--gen-len", "4", "--no-warmup", "--threads", "1",
                                 "--kv-dtype", kv_dtype, "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return nlohmann::json::parse(LastLine(result.out));
  };
  const nlohmann::json vanilla32 = run("vanilla_parallel_rot025", "f32");
  const nlohmann::json vanilla16 = run("vanilla_parallel_rot025", "f16");
  EXPECT_EQ(vanilla16["kv_dtype"], "F16");
  EXPECT_EQ(vanilla16["kv_bytes_per_seq"].get<int64_t>() * 2,
            vanilla32["kv_bytes_per_seq"].get<int64_t>());
  EXPECT_GT(vanilla16["generated_tokens"].get<int64_t>(), 0);
  // Block models: the block decoder's cache halves, the one-block local
  // cache of the token decoder stays F32.
  const nlohmann::json block32 = run("block_l4_r2", "f32");
  const nlohmann::json block16 = run("block_l4_r2", "f16");
  EXPECT_LT(block16["kv_bytes_per_seq"].get<int64_t>(), block32["kv_bytes_per_seq"].get<int64_t>());
  EXPECT_GT(block16["kv_bytes_per_seq"].get<int64_t>() * 2,
            block32["kv_bytes_per_seq"].get<int64_t>());
}

TEST(BenchCommandTest, SweepPrintsEveryPointThenAnArrayAndWritesOut) {
  const std::string dir = TempDir("bench_sweep");
  const std::string out = dir + "/points.json";
  auto result = RunBlockserve({"bench", "--engine", "--model", Fixture("block_l4_r2"),
                               "--prompt-len", "8", "--gen-len", "4", "--batch", "1,2", "--repeat",
                               "2", "--no-warmup", "--threads", "1", "--json", "--out", out});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json all = nlohmann::json::parse(LastLine(result.out));
  ASSERT_TRUE(all.is_array());
  ASSERT_EQ(all.size(), 2u);
  ExpectPointFields(all[0], 8, 4, 1);
  ExpectPointFields(all[1], 8, 4, 2);
  EXPECT_EQ(all[1]["repeat"], 2);
  EXPECT_EQ(all[1]["generated_tokens_per_s_runs"].size(), 2u);
  std::ifstream file(out);
  EXPECT_EQ(nlohmann::json::parse(file), all);
}

TEST(BenchCommandTest, HumanOutputAndScenarios) {
  auto result =
      RunBlockserve({"bench", "--engine", "--model", Fixture("block_l4_r2"), "--prompt-len", "8",
                     "--gen-len", "4", "--no-warmup", "--threads", "1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("generated tok/s"));
  EXPECT_THAT(result.out, HasSubstr("kv/seq"));
}

TEST(BenchCommandTest, UsageErrors) {
  const std::string model = Fixture("block_l4_r2");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"bench", "--model", model}, "choose one target"},
      {{"bench", "--engine", "--gateway", "127.0.0.1:1", "--model", model}, "choose one target"},
      {{"bench", "--engine"}, "--engine needs --model"},
      {{"bench", "--engine", "--model", model, "--scenario", "bogus"}, "unknown --scenario"},
      {{"bench", "--engine", "--model", model, "--batch", "2,x"}, "not a positive integer"},
      {{"bench", "--gateway", "127.0.0.1:1", "--timeout", "0"}, "--timeout > 0"},
  };
  for (const Case& c : cases) {
    auto result = RunBlockserve(c.args);
    EXPECT_EQ(result.exit_code, 2) << c.message << ": " << result.err;
    EXPECT_THAT(result.err, HasSubstr(c.message));
  }
}

TEST(BenchCommandTest, GatewayThatDoesNotAnswerFailsWithinTheTimeout) {
  // Port 1 on loopback: nothing listens; GetModelInfo waits for readiness
  // until its deadline (at least 5 s), then the command fails.
  auto result = RunBlockserve(
      {"bench", "--gateway", "127.0.0.1:1", "--timeout", "1", "--no-warmup", "--json"});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_THAT(result.err, HasSubstr("GetModelInfo"));
}

TEST(PlotBenchTest, ChartsFromBenchJson) {
  const std::string dir = TempDir("plot_bench");
  // A block and a vanilla sweep, one written with --out and one from stdout.
  auto block =
      RunBlockserve({"bench", "--engine", "--model", Fixture("block_l4_r2"), "--prompt-len", "8",
                     "--gen-len", "4", "--batch", "1,2", "--no-warmup", "--threads", "1", "--json",
                     "--out", dir + "/block.json"});
  ASSERT_EQ(block.exit_code, 0) << block.err;
  auto vanilla = RunBlockserve({"bench", "--engine", "--model", Fixture("vanilla_parallel_rot025"),
                                "--prompt-len", "8", "--gen-len", "4", "--batch", "1,2",
                                "--no-warmup", "--threads", "1", "--json"});
  ASSERT_EQ(vanilla.exit_code, 0) << vanilla.err;
  {
    std::ofstream out(dir + "/vanilla.jsonl");
    out << vanilla.out;
  }
  const std::string script =
      std::string(BLOCKSERVE_TEST_DATA_DIR) + "/../../tools/bench/plot_bench.py";
  auto plot = RunProcess({"/usr/bin/python3", script, dir + "/block.json", dir + "/vanilla.jsonl",
                          "--out-dir", dir + "/charts"},
                         "", /*timeout_s=*/60);
  ASSERT_EQ(plot.exit_code, 0) << plot.err
                               << "\n(the script needs Debian's python3-matplotlib: "
                                  "tools/setup.sh installs it)";
  for (const char* name : {"throughput_vs_batch.png", "block_vs_vanilla.png"}) {
    const std::string path = dir + "/charts/" + name;
    EXPECT_THAT(plot.out, HasSubstr(path));
    std::ifstream png(path, std::ios::binary);
    ASSERT_TRUE(png) << path;
    char magic[8] = {};
    png.read(magic, 8);
    EXPECT_EQ(std::string(magic, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << path;
    EXPECT_GT(std::filesystem::file_size(path), 5000u) << path;
  }
}

TEST(PlotBenchTest, NoPointsIsAnError) {
  const std::string dir = TempDir("plot_bench_empty");
  {
    std::ofstream out(dir + "/empty.json");
    out << "[]\n";
  }
  const std::string script =
      std::string(BLOCKSERVE_TEST_DATA_DIR) + "/../../tools/bench/plot_bench.py";
  auto plot = RunProcess({"/usr/bin/python3", script, dir + "/empty.json", "--out-dir", dir}, "",
                         /*timeout_s=*/60);
  EXPECT_EQ(plot.exit_code, 1);
  EXPECT_THAT(plot.err, HasSubstr("no benchmark points"));
}

}  // namespace
}  // namespace blockserve
