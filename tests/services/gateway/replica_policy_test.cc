// LeastLoadedReplicaPolicy: which context replica takes the next request.
#include "services/gateway/replica_policy.h"

#include <vector>

#include "gtest/gtest.h"

namespace blockserve::services {
namespace {

ReplicaSlot Up(int local, int reported, bool workers = true) {
  return {.available = true,
          .local_outstanding = local,
          .reported_sessions = reported,
          .has_workers = workers};
}

TEST(LeastLoadedReplicaPolicyTest, UsesTheLargerOfLocalAndReportedLoad) {
  LeastLoadedReplicaPolicy policy;
  // Replica 0: few local requests but busy with other gateways' sessions.
  std::vector<ReplicaSlot> replicas = {Up(1, 9), Up(3, 2)};
  EXPECT_EQ(policy.Pick(replicas), 1);
}

TEST(LeastLoadedReplicaPolicyTest, SkipsUnavailableReplicas) {
  LeastLoadedReplicaPolicy policy;
  ReplicaSlot down = Up(0, 0);
  down.available = false;
  std::vector<ReplicaSlot> replicas = {down, Up(5, 5)};
  EXPECT_EQ(policy.Pick(replicas), 1);
  replicas[1].available = false;
  EXPECT_EQ(policy.Pick(replicas), -1);
}

TEST(LeastLoadedReplicaPolicyTest, PrefersReplicasWithWorkersWhenThereAreAny) {
  LeastLoadedReplicaPolicy policy;
  std::vector<ReplicaSlot> replicas = {Up(0, 0, /*workers=*/false), Up(4, 4)};
  EXPECT_EQ(policy.Pick(replicas), 1);
  replicas[1].has_workers = false;  // none has workers: any available one
  EXPECT_EQ(policy.Pick(replicas), 0);
}

TEST(LeastLoadedReplicaPolicyTest, TiesRotate) {
  LeastLoadedReplicaPolicy policy;
  std::vector<ReplicaSlot> replicas = {Up(0, 0), Up(0, 0)};
  const int first = policy.Pick(replicas);
  const int second = policy.Pick(replicas);
  EXPECT_NE(first, second);
}

}  // namespace
}  // namespace blockserve::services
