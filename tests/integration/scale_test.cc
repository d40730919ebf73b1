// Scaling token workers of a running `blockserve up` with `blockserve
// scale` while requests run (fixture model block_l4_r2): an added worker
// joins the context service's pool and gets blocks; removing one
// mid-generation drains it (no block retried, no request failed) and stops
// its process cleanly. Also a context service that finds its workers
// through DNS (dns:///localhost:PORT), a drain announcement turning the
// gateway away from a context replica, `blockserve context-admin` against
// live context services, and the scale command's errors.
#include <signal.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/stack_util.h"
#include "tests/integration/up_process.h"

namespace blockserve::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::testing::UnorderedElementsAreArray;

const char kModel[] = "block_l4_r2";

// Runs `blockserve ARGS` to the end; returns its exit code and stdout.
struct CommandResult {
  std::optional<int> code;
  std::string out;
};
CommandResult RunBlockserve(const std::vector<std::string>& args, double timeout_s = 60) {
  static int counter = 0;
  const std::string out_file = std::filesystem::temp_directory_path() /
                               ("blockserve-scale-test-" + std::to_string(getpid()) + "-" +
                                std::to_string(counter++) + ".out");
  CommandResult result;
  {
    ChildGuard child(args, out_file);
    result.code = child.WaitExit(timeout_s);
  }
  std::ifstream in(out_file);
  result.out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::filesystem::remove(out_file);
  return result;
}

// Clients sending Generate calls back to back until stopped; counts
// outcomes and the calls that were running at a given moment.
class Load {
 public:
  Load(const std::string& gateway, int clients) {
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back([this, gateway, c] {
        auto stub = v1::Generation::NewStub(
            grpc::CreateChannel(gateway, grpc::InsecureChannelCredentials()));
        for (int i = 0; !stop_.load(); ++i) {
          // 48 tokens: several blocks per request, so blocks are in flight
          // at the workers most of the time.
          v1::GenerateRequest request = TokenRequest({1 + c, 2 + i % 50, 3}, 48);
          request.set_ignore_eos(true);
          const int64_t epoch_at_start = epoch_.load();
          GenerateResult result = Generate(*stub, request, 60);
          if (result.status.ok() && result.tokens.size() == 48) {
            ok_.fetch_add(1);
            if (epoch_.load() != epoch_at_start) spanning_.fetch_add(1);
          } else {
            std::lock_guard<std::mutex> lock(mutex_);
            failures_.push_back(result.status.ok()
                                    ? "short output: " + std::to_string(result.tokens.size())
                                    : result.status.error_message());
          }
        }
      });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_.store(true);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  // Marks a moment: calls running across it count as `spanning`.
  void Mark() { epoch_.fetch_add(1); }
  int ok() const { return ok_.load(); }
  int spanning() const { return spanning_.load(); }
  std::vector<std::string> failures() {
    std::lock_guard<std::mutex> lock(mutex_);
    return failures_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> epoch_{0};
  std::atomic<int> ok_{0};
  std::atomic<int> spanning_{0};
  std::mutex mutex_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

double ContextMetric(const UpProcess& up, const std::string& series) {
  return MetricValue(HttpGet(up.MetricsUrls("context").at(0)), series);
}

TEST(ScaleTest, AddsAWorkerAndRemovesOneMidGenerationWithoutFailingARequest) {
  auto up =
      UpProcess::Start({"--model=" + TestModelDir(kModel), "--workers=1", "--grace-period=10"});
  ASSERT_TRUE(up.ok()) << up.status();
  const std::vector<std::string> first_workers = (*up)->Workers();
  ASSERT_EQ(first_workers.size(), 1u);
  const pid_t first_worker_pid = (*up)->Pids("worker").at(0);

  Load load((*up)->gateway(), 4);
  ASSERT_TRUE(Eventually([&] { return load.ok() >= 4; }, 30));

  // Scale out: a second worker starts and the context service uses it.
  load.Mark();
  CommandResult scaled = RunBlockserve({"scale", "--up-file=" + (*up)->port_file(), "--workers=2"});
  ASSERT_EQ(scaled.code, 0) << scaled.out;
  const std::vector<std::string> workers = (*up)->Workers();
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_THAT(nlohmann::json::parse(scaled.out)["workers"].get<std::vector<std::string>>(),
              UnorderedElementsAreArray(workers));
  EXPECT_THAT(workers, IsSupersetOf(first_workers));
  std::string added = workers[0] == first_workers[0] ? workers[1] : workers[0];
  EXPECT_TRUE(Eventually(
      [&] {
        return ContextMetric(**up, "blockserve_context_blocks_dispatched_total{worker=\"" + added +
                                       "\"}") > 0;
      },
      30))
      << "the added worker " << added << " got no blocks";
  // Readiness is a gauge updated by the pool's maintenance thread: poll it
  // (a loaded CI machine can lag one update behind).
  EXPECT_TRUE(
      Eventually([&] { return ContextMetric(**up, "blockserve_context_ready_workers") == 2; }, 10))
      << ContextMetric(**up, "blockserve_context_ready_workers");

  // `blockserve context-admin --list` sees both.
  std::string context;
  const nlohmann::json state_now = (*up)->State();
  for (const auto& service : state_now["services"]) {
    if (service["role"] == "context") context = service["address"];
  }
  CommandResult listed = RunBlockserve({"context-admin", "--context=" + context, "--list"});
  ASSERT_EQ(listed.code, 0);
  nlohmann::json list = nlohmann::json::parse(listed.out);
  EXPECT_EQ(list["membership"], "static");
  EXPECT_EQ(list["workers"].size(), 2u);

  // Scale in while requests run: the newest worker goes, drained first.
  const pid_t added_pid = (*up)->Pids("worker").at(1);
  const double dispatched_before =
      ContextMetric(**up, "blockserve_context_blocks_dispatched_total{worker=\"" + added + "\"}");
  EXPECT_GT(dispatched_before, 0);
  // Remove it while it holds blocks (one scrape ago).
  EXPECT_TRUE(Eventually(
      [&] {
        return ContextMetric(**up, "blockserve_context_worker_in_flight_blocks{worker=\"" + added +
                                       "\"}") > 0;
      },
      10));
  load.Mark();
  scaled = RunBlockserve({"scale", "--up-file=" + (*up)->port_file(), "--workers=1"});
  ASSERT_EQ(scaled.code, 0) << scaled.out;
  EXPECT_EQ((*up)->Workers(), first_workers);
  EXPECT_EQ((*up)->Pids("worker"), std::vector<pid_t>{first_worker_pid});
  EXPECT_TRUE(Eventually([&] { return kill(added_pid, 0) != 0; }, 10))
      << "the removed worker still runs";
  const int ok_after_removal = load.ok();
  ASSERT_TRUE(Eventually([&] { return load.ok() >= ok_after_removal + 4; }, 30))
      << "requests stopped after the scale-in";
  load.Stop();

  EXPECT_THAT(load.failures(), ::testing::IsEmpty());
  EXPECT_GT(load.spanning(), 0) << "no request ran across a scaling step";
  // Drained, not broken: no block had to be re-dispatched.
  EXPECT_EQ(ContextMetric(**up, "blockserve_context_block_retries_total"), 0);
  EXPECT_TRUE(
      Eventually([&] { return ContextMetric(**up, "blockserve_context_ready_workers") == 1; }, 10))
      << ContextMetric(**up, "blockserve_context_ready_workers");
  const nlohmann::json state = (*up)->State();
  EXPECT_TRUE(state["last_scale"]["ok"].get<bool>());

  (*up)->process().Signal(SIGTERM);
  EXPECT_EQ((*up)->process().WaitExit(60), 0) << "blockserve up did not stop cleanly";
}

TEST(ScaleTest, ContextServiceFindsWorkersThroughDns) {
  // `localhost` through the system resolver, re-resolved every 0.2 s: the
  // way a context service follows a Kubernetes headless Service.
  const std::vector<std::string> model = {"--model=" + TestModelDir(kModel), "--threads=1"};
  auto worker = ServiceProcess::Start("worker", model);
  ASSERT_TRUE(worker.ok()) << worker.status();
  const std::string port = (*worker)->address().substr((*worker)->address().rfind(':') + 1);
  std::vector<std::string> context_args = model;
  context_args.push_back("--workers=dns:///localhost:" + port);
  context_args.push_back("--worker-resolve-interval=0.2");
  auto context = ServiceProcess::Start("context", context_args);
  ASSERT_TRUE(context.ok()) << context.status();
  auto gateway = ServiceProcess::Start("gateway", {"--context=" + (*context)->address()});
  ASSERT_TRUE(gateway.ok()) << gateway.status();

  auto stub = v1::Generation::NewStub(
      grpc::CreateChannel((*gateway)->address(), grpc::InsecureChannelCredentials()));
  v1::GenerateRequest request = TokenRequest({1, 2, 3}, 16);
  request.set_ignore_eos(true);
  GenerateResult result = Generate(*stub, request, 30);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.tokens.size(), 16u);
  EXPECT_GT((*context)->Metric(
                "blockserve_context_blocks_dispatched_total{worker=\"127.0.0.1:" + port + "\"}"),
            0);

  CommandResult listed =
      RunBlockserve({"context-admin", "--context=" + (*context)->address(), "--list"});
  ASSERT_EQ(listed.code, 0);
  nlohmann::json list = nlohmann::json::parse(listed.out);
  EXPECT_EQ(list["membership"], "dns");
  // The DNS-managed set is not replaced by hand.
  CommandResult set = RunBlockserve(
      {"context-admin", "--context=" + (*context)->address(), "--set-workers=127.0.0.1:1"});
  EXPECT_EQ(set.code, 1);
}

TEST(ScaleTest, AnnouncedDrainTurnsGatewaysAwayFromAContextReplica) {
  // What a context pod's preStop hook does before SIGTERM.
  auto stack = Stack::Start(TestModelDir(kModel), 1, 2);
  ASSERT_TRUE(stack.ok()) << stack.status();
  ServiceProcess& leaving = *(*stack)->contexts[0];
  ServiceProcess& staying = *(*stack)->contexts[1];
  const auto sessions = [](ServiceProcess& context) {
    const double value = context.Metric("blockserve_context_sessions_total");
    return std::isnan(value) ? 0.0 : value;
  };
  CommandResult announced = RunBlockserve(
      {"context-admin", "--context=" + leaving.address(), "--announce-drain", "--then-sleep=1"});
  ASSERT_EQ(announced.code, 0);
  const double leaving_before = sessions(leaving);
  const double staying_before = sessions(staying);
  auto client = (*stack)->Client();
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(Generate(*client, TokenRequest({1, 2, 3 + i}, 8)).status.ok());
  }
  EXPECT_EQ(sessions(leaving), leaving_before);
  EXPECT_EQ(sessions(staying), staying_before + 6);
  EXPECT_EQ(HealthStatus(leaving.address()), "SERVING");  // still up until SIGTERM
}

TEST(ScaleTest, RejectsBadRequests) {
  CommandResult zero = RunBlockserve({"scale", "--up-file=/nonexistent.json", "--workers=0"});
  EXPECT_EQ(zero.code, 2);
  CommandResult missing = RunBlockserve({"scale", "--up-file=/nonexistent.json", "--workers=2"});
  EXPECT_EQ(missing.code, 1);
  CommandResult admin = RunBlockserve({"context-admin", "--context=127.0.0.1:1"});
  EXPECT_EQ(admin.code, 2);  // no action given
}

}  // namespace
}  // namespace blockserve::testing
