// ContextAdmin over a real gRPC server on 127.0.0.1 (port 0) in front of a
// real WorkerPool, called through the client helpers
// (context_admin_client.h): worker set changes, DNS-managed refusal,
// argument checks, drain announcement, not-yet-attached, and the
// same-machine peer check.
#include "services/context/context_admin_service.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/context/context_admin_client.h"
#include "services/context/worker_pool.h"

namespace blockserve::services {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr double kTimeoutS = 5.0;

std::vector<std::string> Addresses(const v1::WorkersResponse& response) {
  std::vector<std::string> out;
  for (const v1::WorkerState& worker : response.workers()) out.push_back(worker.address());
  return out;
}

template <typename Predicate>
bool Eventually(Predicate predicate, double timeout_s = 10) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

class ContextAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&admin_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::system_clock::now());
    pool_.Shutdown();
  }
  void Attach(bool dns_managed) {
    admin_.Attach(&pool_, dns_managed, [this] { announced_.fetch_add(1); });
  }

  // Workers at ports nothing listens on: they never become ready, which is
  // all the membership calls need.
  WorkerPool pool_{WorkerPool::Options{}, /*metrics=*/nullptr};
  ContextAdminServiceImpl admin_{/*allow_any_peer=*/false};
  std::atomic<int> announced_{0};
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(ContextAdminTest, UnavailableUntilAttached) {
  auto listed = ListContextWorkers(address_, kTimeoutS);
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(AnnounceContextDrain(address_, kTimeoutS).code(), absl::StatusCode::kUnavailable);
}

TEST_F(ContextAdminTest, SetWorkersReplacesTheSet) {
  Attach(/*dns_managed=*/false);
  auto set = SetContextWorkers(address_, {"127.0.0.1:1", "127.0.0.1:2"}, kTimeoutS);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->membership(), "static");
  EXPECT_THAT(Addresses(*set), UnorderedElementsAre("127.0.0.1:1", "127.0.0.1:2"));
  for (const v1::WorkerState& worker : set->workers()) {
    EXPECT_FALSE(worker.removed());
    EXPECT_FALSE(worker.ready());
  }

  set = SetContextWorkers(address_, {"127.0.0.1:2", "127.0.0.1:3"}, kTimeoutS);
  ASSERT_TRUE(set.ok()) << set.status();
  // The removed worker holds no blocks, so the pool forgets it soon.
  EXPECT_TRUE(Eventually([&] {
    auto listed = ListContextWorkers(address_, kTimeoutS);
    return listed.ok() &&
           Addresses(*listed) == std::vector<std::string>{"127.0.0.1:2", "127.0.0.1:3"};
  }));
}

TEST_F(ContextAdminTest, SetWorkersChecksItsArguments) {
  Attach(/*dns_managed=*/false);
  auto empty = SetContextWorkers(address_, {}, kTimeoutS);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);

  auto dns = SetContextWorkers(address_, {"dns:///workers:7001"}, kTimeoutS);
  ASSERT_FALSE(dns.ok());
  EXPECT_EQ(dns.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(dns.status().message()), HasSubstr("dns:///"));

  auto no_port = SetContextWorkers(address_, {"worker-host"}, kTimeoutS);
  ASSERT_FALSE(no_port.ok());
  EXPECT_EQ(no_port.status().code(), absl::StatusCode::kInvalidArgument);

  auto listed = ListContextWorkers(address_, kTimeoutS);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->workers_size(), 0);  // nothing was applied
}

TEST_F(ContextAdminTest, DnsManagedSetIsNotReplaced) {
  pool_.UpdateWorkers({"127.0.0.1:1"});
  Attach(/*dns_managed=*/true);
  auto set = SetContextWorkers(address_, {"127.0.0.1:2"}, kTimeoutS);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kFailedPrecondition);
  auto listed = ListContextWorkers(address_, kTimeoutS);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->membership(), "dns");
  EXPECT_THAT(Addresses(*listed), UnorderedElementsAre("127.0.0.1:1"));
}

TEST_F(ContextAdminTest, AnnounceDrainCallsTheService) {
  Attach(/*dns_managed=*/false);
  ASSERT_TRUE(AnnounceContextDrain(address_, kTimeoutS).ok());
  ASSERT_TRUE(AnnounceContextDrain(address_, kTimeoutS).ok());
  EXPECT_EQ(announced_.load(), 2);
}

TEST_F(ContextAdminTest, UnreachableServiceIsUnavailable) {
  server_->Shutdown(std::chrono::system_clock::now());
  auto listed = ListContextWorkers(address_, 1.0);
  ASSERT_FALSE(listed.ok());
  EXPECT_TRUE(listed.status().code() == absl::StatusCode::kUnavailable ||
              listed.status().code() == absl::StatusCode::kDeadlineExceeded)
      << listed.status();
}

TEST(IsLoopbackPeerTest, AcceptsOnlyLoopback) {
  EXPECT_TRUE(IsLoopbackPeer("ipv4:127.0.0.1:53412"));
  EXPECT_TRUE(IsLoopbackPeer("ipv4:127.1.2.3:1"));
  EXPECT_TRUE(IsLoopbackPeer("ipv6:[::1]:53412"));
  EXPECT_TRUE(IsLoopbackPeer("ipv6:%5B::1%5D:53412"));
  EXPECT_TRUE(IsLoopbackPeer("ipv6:[::ffff:127.0.0.1]:53412"));
  EXPECT_TRUE(IsLoopbackPeer("unix:/tmp/socket"));
  EXPECT_FALSE(IsLoopbackPeer("ipv4:10.0.0.5:53412"));
  EXPECT_FALSE(IsLoopbackPeer("ipv4:128.0.0.1:1"));
  EXPECT_FALSE(IsLoopbackPeer("ipv6:[::ffff:10.0.0.5]:53412"));
  EXPECT_FALSE(IsLoopbackPeer("ipv6:[fe80::1]:53412"));
  EXPECT_FALSE(IsLoopbackPeer(""));
}

TEST(PeerIpTest, ExtractsAndNormalizesTheAddress) {
  EXPECT_EQ(PeerIp("ipv4:10.0.0.5:41000"), "10.0.0.5");
  EXPECT_EQ(PeerIp("ipv6:[fe80::1]:41000"), "fe80::1");
  EXPECT_EQ(PeerIp("ipv6:%5Bfe80:0::1%5D:41000"), "fe80::1");
  EXPECT_EQ(PeerIp("ipv6:[fe80::1%25eth0]:41000"), "fe80::1");
  EXPECT_EQ(PeerIp("ipv6:[::ffff:10.0.0.5]:41000"), "10.0.0.5");
  EXPECT_EQ(PeerIp("unix:/tmp/socket"), "");
  EXPECT_EQ(PeerIp("ipv4:not-an-ip:1"), "");
  EXPECT_EQ(PeerIp(""), "");
}

TEST(IsLocalPeerTest, LoopbackOrAnAddressOfThisMachine) {
  const std::set<std::string> local = {"10.0.0.5", "fd00::5"};
  EXPECT_TRUE(IsLocalPeer("ipv4:127.0.0.1:1", local));
  EXPECT_TRUE(IsLocalPeer("ipv4:10.0.0.5:41000", local));
  EXPECT_TRUE(IsLocalPeer("ipv6:[::ffff:10.0.0.5]:41000", local));
  EXPECT_TRUE(IsLocalPeer("ipv6:[fd00:0::5]:41000", local));
  EXPECT_FALSE(IsLocalPeer("ipv4:10.0.0.6:41000", local));
  EXPECT_FALSE(IsLocalPeer("ipv6:[fd00::6]:41000", local));
  EXPECT_FALSE(IsLocalPeer("ipv4:10.0.0.6:41000", {}));
}

TEST(LocalInterfaceIpsTest, IncludesLoopback) {
  const std::set<std::string> ips = LocalInterfaceIps();
  EXPECT_EQ(ips.count("127.0.0.1"), 1u);
}

}  // namespace
}  // namespace blockserve::services
