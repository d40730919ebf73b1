// The --workers flag parser and WorkerDiscovery with a scripted resolver:
// union of static and DNS addresses, updates only on change, a failing or
// empty answer keeps the last one, Stop() is prompt. One case resolves
// "localhost" with the system resolver.
#include "services/context/worker_discovery.h"

#include <chrono>
#include <map>
#include <mutex>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blockserve::services {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

TEST(ParseWorkerTargetsTest, StaticAndDnsEntries) {
  auto targets = ParseWorkerTargets(
      " 10.0.0.5:7001, dns:///workers.ns.svc:7001 ,10.0.0.6:7001,dns:///workers.ns.svc:7001",
      "workers");
  ASSERT_TRUE(targets.ok()) << targets.status();
  EXPECT_THAT(targets->static_addresses, ElementsAre("10.0.0.5:7001", "10.0.0.6:7001"));
  ASSERT_EQ(targets->dns_names.size(), 1u);  // duplicates collapse
  EXPECT_EQ(targets->dns_names[0].host, "workers.ns.svc");
  EXPECT_EQ(targets->dns_names[0].port, 7001);
  EXPECT_EQ(targets->dns_names[0].ToString(), "dns:///workers.ns.svc:7001");
  EXPECT_TRUE(targets->uses_dns());
}

TEST(ParseWorkerTargetsTest, StaticOnly) {
  auto targets = ParseWorkerTargets("[::1]:7001,localhost:7002", "workers");
  ASSERT_TRUE(targets.ok()) << targets.status();
  EXPECT_FALSE(targets->uses_dns());
  EXPECT_THAT(targets->static_addresses, ElementsAre("[::1]:7001", "localhost:7002"));
}

TEST(ParseWorkerTargetsTest, RejectsMalformedEntries) {
  for (const char* bad :
       {"", "a:1,,b:2", "noport", "dns:///name", "dns:///name:0", "dns:///name:70000",
        "dns:///:7001", "dns://name:7001", "dns:///a/b:7001", "dns:///name:x"}) {
    auto targets = ParseWorkerTargets(bad, "workers");
    EXPECT_FALSE(targets.ok()) << bad;
    EXPECT_EQ(targets.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(targets.status().message()), HasSubstr("--workers")) << bad;
  }
}

TEST(ResolveWithGetaddrinfoTest, ResolvesLocalhost) {
  auto addresses = ResolveWithGetaddrinfo("localhost", 7001);
  ASSERT_TRUE(addresses.ok()) << addresses.status();
  ASSERT_FALSE(addresses->empty());
  for (const std::string& address : *addresses) {
    EXPECT_TRUE(address == "127.0.0.1:7001" || address == "[::1]:7001") << address;
  }
}

TEST(ResolveWithGetaddrinfoTest, UnknownNameIsNotFoundOrUnavailable) {
  auto addresses = ResolveWithGetaddrinfo("no-such-host.invalid", 7001);
  ASSERT_FALSE(addresses.ok());
  EXPECT_TRUE(addresses.status().code() == absl::StatusCode::kNotFound ||
              addresses.status().code() == absl::StatusCode::kUnavailable)
      << addresses.status();
}

// A resolver whose answers the test sets; counts calls.
class ScriptedResolver {
 public:
  void Set(const std::string& host, absl::StatusOr<std::vector<std::string>> answer) {
    std::lock_guard<std::mutex> lock(mutex_);
    answers_.insert_or_assign(host, std::move(answer));
  }
  WorkerResolver AsResolver() {
    return [this](const std::string& host, int port) -> absl::StatusOr<std::vector<std::string>> {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = answers_.find(host);
      if (it == answers_.end()) return absl::NotFoundError("unknown " + host);
      return it->second;
    };
  }

 private:
  std::mutex mutex_;
  std::map<std::string, absl::StatusOr<std::vector<std::string>>> answers_;
};

// Records every update.
class Updates {
 public:
  WorkerDiscovery::Update AsUpdate() {
    return [this](const std::set<std::string>& addresses) {
      std::lock_guard<std::mutex> lock(mutex_);
      sets_.push_back(addresses);
    };
  }
  std::vector<std::set<std::string>> sets() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return sets_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::set<std::string>> sets_;
};

WorkerTargets Targets(const std::string& text) { return *ParseWorkerTargets(text, "workers"); }

TEST(WorkerDiscoveryTest, FirstRoundUpdatesWithTheUnion) {
  ScriptedResolver resolver;
  resolver.Set("workers", std::vector<std::string>{"10.0.0.1:7001", "10.0.0.2:7001"});
  Updates updates;
  WorkerDiscovery discovery(Targets("10.0.0.9:7001,dns:///workers:7001"),
                            {.interval_s = 60, .resolve = resolver.AsResolver()},
                            updates.AsUpdate());
  ASSERT_TRUE(discovery.WaitForRounds(1, 10));
  EXPECT_THAT(updates.sets(), ElementsAre(std::set<std::string>{"10.0.0.1:7001", "10.0.0.2:7001",
                                                                "10.0.0.9:7001"}));
  EXPECT_EQ(discovery.current().size(), 3u);
}

TEST(WorkerDiscoveryTest, FollowsTheNameAsItChanges) {
  ScriptedResolver resolver;
  resolver.Set("workers", std::vector<std::string>{"10.0.0.1:7001"});
  Updates updates;
  WorkerDiscovery discovery(Targets("dns:///workers:7001"),
                            {.interval_s = 0.02, .resolve = resolver.AsResolver()},
                            updates.AsUpdate());
  ASSERT_TRUE(discovery.WaitForRounds(3, 10));
  // No change: one update only.
  EXPECT_EQ(updates.sets().size(), 1u);

  // Scale out.
  resolver.Set("workers", std::vector<std::string>{"10.0.0.1:7001", "10.0.0.2:7001"});
  int rounds = discovery.rounds();
  ASSERT_TRUE(discovery.WaitForRounds(rounds + 2, 10));
  EXPECT_THAT(discovery.current(), UnorderedElementsAre("10.0.0.1:7001", "10.0.0.2:7001"));

  // Scale in.
  resolver.Set("workers", std::vector<std::string>{"10.0.0.2:7001"});
  rounds = discovery.rounds();
  ASSERT_TRUE(discovery.WaitForRounds(rounds + 2, 10));
  discovery.Stop();
  const auto sets = updates.sets();
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_THAT(sets[1], UnorderedElementsAre("10.0.0.1:7001", "10.0.0.2:7001"));
  EXPECT_THAT(sets[2], ElementsAre("10.0.0.2:7001"));
}

TEST(WorkerDiscoveryTest, FailuresAndEmptyAnswersKeepTheLastAnswer) {
  ScriptedResolver resolver;
  resolver.Set("workers", std::vector<std::string>{"10.0.0.1:7001", "10.0.0.2:7001"});
  Updates updates;
  WorkerDiscovery discovery(Targets("dns:///workers:7001"),
                            {.interval_s = 0.02, .resolve = resolver.AsResolver()},
                            updates.AsUpdate());
  ASSERT_TRUE(discovery.WaitForRounds(1, 10));

  resolver.Set("workers", absl::UnavailableError("SERVFAIL"));
  int rounds = discovery.rounds();
  ASSERT_TRUE(discovery.WaitForRounds(rounds + 3, 10));
  resolver.Set("workers", std::vector<std::string>{});  // no ready pod: empty answer
  rounds = discovery.rounds();
  ASSERT_TRUE(discovery.WaitForRounds(rounds + 3, 10));
  resolver.Set("workers", absl::NotFoundError("NXDOMAIN"));
  rounds = discovery.rounds();
  ASSERT_TRUE(discovery.WaitForRounds(rounds + 3, 10));
  EXPECT_EQ(updates.sets().size(), 1u);
  EXPECT_THAT(discovery.current(), UnorderedElementsAre("10.0.0.1:7001", "10.0.0.2:7001"));

  // Back again with a different answer.
  resolver.Set("workers", std::vector<std::string>{"10.0.0.3:7001"});
  rounds = discovery.rounds();
  ASSERT_TRUE(discovery.WaitForRounds(rounds + 2, 10));
  EXPECT_THAT(discovery.current(), ElementsAre("10.0.0.3:7001"));
  EXPECT_EQ(updates.sets().size(), 2u);
}

TEST(WorkerDiscoveryTest, NameNeverResolvedLeavesTheStaticSet) {
  ScriptedResolver resolver;  // knows no name
  Updates updates;
  WorkerDiscovery discovery(Targets("10.0.0.9:7001,dns:///missing:7001"),
                            {.interval_s = 0.02, .resolve = resolver.AsResolver()},
                            updates.AsUpdate());
  ASSERT_TRUE(discovery.WaitForRounds(2, 10));
  EXPECT_THAT(updates.sets(), ElementsAre(std::set<std::string>{"10.0.0.9:7001"}));
}

TEST(WorkerDiscoveryTest, StopIsPromptWithALongInterval) {
  ScriptedResolver resolver;
  resolver.Set("workers", std::vector<std::string>{"10.0.0.1:7001"});
  Updates updates;
  WorkerDiscovery discovery(Targets("dns:///workers:7001"),
                            {.interval_s = 3600, .resolve = resolver.AsResolver()},
                            updates.AsUpdate());
  ASSERT_TRUE(discovery.WaitForRounds(1, 10));
  const auto start = std::chrono::steady_clock::now();
  discovery.Stop();
  discovery.Stop();  // idempotent
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_FALSE(discovery.WaitForRounds(2, 0.05));
}

}  // namespace
}  // namespace blockserve::services
