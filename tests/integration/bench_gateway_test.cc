// blockserve bench --gateway against a real stack (gateway, one context
// service, two token workers on 127.0.0.1; fixture model block_l4_r2): the
// load generator's JSON has the engine target's fields, every request ran
// to its length, the request count and the time bound hold, the same
// model's --engine point agrees on the KV bytes, and the charts script
// takes the gateway's JSON too.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/stack_util.h"
#include "tests/util/subprocess.h"

namespace blockserve::testing {
namespace {

using ::testing::HasSubstr;

const char kModel[] = "block_l4_r2";

class BenchGatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto stack = Stack::Start(TestModelDir(kModel), /*workers=*/2, /*contexts=*/1,
                              {"--max-concurrent=16", "--max-queued=64"});
    ASSERT_TRUE(stack.ok()) << stack.status();
    stack_ = stack->release();
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(stack_, nullptr); }

  static Stack* stack_;
};

Stack* BenchGatewayTest::stack_ = nullptr;

TEST_F(BenchGatewayTest, SinglePointReportsTheEngineFieldsMeasuredThroughTheStack) {
  const std::string out_dir = ::testing::TempDir() + "/bench_gateway_" + std::to_string(getpid());
  std::filesystem::create_directories(out_dir);
  auto result = RunBlockserve({"bench", "--gateway", stack_->gateway->address(), "--model",
                               TestModelDir(kModel), "--prompt-len", "10", "--gen-len", "9",
                               "--batch", "4", "--requests", "8", "--timeout", "30", "--json",
                               "--out", out_dir + "/gateway.json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.err, HasSubstr("bench: warm-up"));
  const nlohmann::json point = nlohmann::json::parse(LastLine(result.out));
  ASSERT_TRUE(point.is_object()) << result.out;
  EXPECT_EQ(point["target"], "gateway");
  EXPECT_EQ(point["gateway"], stack_->gateway->address());
  EXPECT_EQ(point["model"], kModel);
  EXPECT_EQ(point["kind"], "block");
  EXPECT_EQ(point["batch"], 4);
  EXPECT_EQ(point["requests"], 8);
  EXPECT_EQ(point["failed_requests"], 0);
  EXPECT_EQ(point["generated_tokens"], 8 * 9);
  EXPECT_GT(point["generated_tokens_per_s"].get<double>(), 0);
  EXPECT_NEAR(point["total_tokens_per_s"].get<double>(),
              point["generated_tokens_per_s"].get<double>() * (10 + 9) / 9,
              1e-6 * point["total_tokens_per_s"].get<double>());
  EXPECT_GT(point["ttft_s"].get<double>(), 0);
  for (const char* p : {"p50", "p90", "p99", "mean"}) {
    EXPECT_TRUE(point["ttft"].contains(p));
    EXPECT_TRUE(point["itl"].contains(p));
    EXPECT_TRUE(point["server_ttft"].contains(p));
  }
  // Blocks of 4 tokens: 9 tokens come in 3 messages, so 2 gaps per request.
  EXPECT_GT(point["itl"]["p50"].get<double>(), 0);
  EXPECT_TRUE(point.contains("peak_rss_bytes"));

  // The KV bytes per sequence come from the model's configuration, as for
  // the in-process target.
  auto engine = RunBlockserve({"bench", "--engine", "--model", TestModelDir(kModel), "--prompt-len",
                               "10", "--gen-len", "9", "--no-warmup", "--threads", "1", "--json"});
  ASSERT_EQ(engine.exit_code, 0) << engine.err;
  EXPECT_EQ(point["kv_bytes_per_seq"],
            nlohmann::json::parse(LastLine(engine.out))["kv_bytes_per_seq"]);

  // The charts script reads the gateway's points too.
  auto plot =
      RunProcess({"/usr/bin/python3",
                  std::string(BLOCKSERVE_TEST_DATA_DIR) + "/../../tools/bench/plot_bench.py",
                  out_dir + "/gateway.json", "--out-dir", out_dir + "/charts"},
                 "", /*timeout_s=*/60);
  ASSERT_EQ(plot.exit_code, 0) << plot.err;
  EXPECT_TRUE(std::filesystem::exists(out_dir + "/charts/throughput_vs_batch.png"));
}

TEST_F(BenchGatewayTest, SweepWithoutModelReportsUnknownKvAndStopsAtTheDuration) {
  // --duration 0.01: each stream starts its first call, none starts after
  // the bound, so fewer than the 40 requests run, and each ran to its end.
  auto result = RunBlockserve({"bench", "--gateway", stack_->gateway->address(), "--prompt-len",
                               "4", "--gen-len", "8", "--batch", "1,2", "--requests", "40",
                               "--duration", "0.01", "--timeout", "30", "--no-warmup", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json all = nlohmann::json::parse(LastLine(result.out));
  ASSERT_TRUE(all.is_array());
  ASSERT_EQ(all.size(), 2u);
  for (const nlohmann::json& point : all) {
    EXPECT_TRUE(point["kv_bytes_per_seq"].is_null());
    EXPECT_EQ(point["failed_requests"], 0);
    EXPECT_LT(point["requests"].get<int>(), 40);
    EXPECT_GE(point["requests"].get<int>(), point["batch"].get<int>());
    EXPECT_EQ(point["generated_tokens"], point["requests"].get<int>() * 8);
  }
}

TEST_F(BenchGatewayTest, ExpiredDeadlinesAreCountedAsFailures) {
  // A deadline far too short for 4000 tokens (1000 blocks): every call
  // fails, the command still prints its JSON and exits 1.
  auto result = RunBlockserve({"bench", "--gateway", stack_->gateway->address(), "--prompt-len",
                               "4", "--gen-len", "4000", "--batch", "2", "--timeout", "0.02",
                               "--no-warmup", "--json"});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_THAT(result.err, HasSubstr("requests failed"));
  const nlohmann::json point = nlohmann::json::parse(LastLine(result.out));
  EXPECT_EQ(point["failed_requests"], 2);
  EXPECT_THAT(point["first_error"].get<std::string>(), HasSubstr("gRPC code 4"));
}

}  // namespace
}  // namespace blockserve::testing
