// LeastOutstandingPolicy: which token worker takes the next block.
#include "services/context/routing_policy.h"

#include <vector>

#include "gtest/gtest.h"

namespace blockserve::services {
namespace {

WorkerSlot Ready(int outstanding, int bound = 4) {
  return {.outstanding = outstanding, .max_in_flight = bound, .ready = true, .accepting = true};
}

TEST(LeastOutstandingPolicyTest, PicksTheWorkerWithFewestOutstandingBlocks) {
  LeastOutstandingPolicy policy;
  std::vector<WorkerSlot> workers = {Ready(3), Ready(1), Ready(2)};
  EXPECT_EQ(policy.Pick(workers), 1);
}

TEST(LeastOutstandingPolicyTest, SkipsWorkersThatAreNotReadyDrainingOrFull) {
  LeastOutstandingPolicy policy;
  WorkerSlot not_ready = Ready(0);
  not_ready.ready = false;
  WorkerSlot draining = Ready(0);
  draining.accepting = false;
  WorkerSlot full = Ready(4, /*bound=*/4);
  std::vector<WorkerSlot> workers = {not_ready, draining, full, Ready(3)};
  EXPECT_EQ(policy.Pick(workers), 3);
}

TEST(LeastOutstandingPolicyTest, NoWorkerCanTakeABlock) {
  LeastOutstandingPolicy policy;
  EXPECT_EQ(policy.Pick({}), -1);
  std::vector<WorkerSlot> full = {Ready(2, 2), Ready(1, 1)};
  EXPECT_EQ(policy.Pick(full), -1);
}

TEST(LeastOutstandingPolicyTest, TiesRotateSoIdleWorkersShareTheLoad) {
  LeastOutstandingPolicy policy;
  std::vector<WorkerSlot> workers = {Ready(0), Ready(0), Ready(0)};
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 30; ++i) ++counts[policy.Pick(workers)];
  EXPECT_EQ(counts, (std::vector<int>{10, 10, 10}));
}

TEST(LeastOutstandingPolicyTest, FillingBlocksSpreadEvenlyUpToTheBound) {
  LeastOutstandingPolicy policy;
  std::vector<WorkerSlot> workers = {Ready(0, 3), Ready(0, 3)};
  for (int i = 0; i < 6; ++i) {
    const int pick = policy.Pick(workers);
    ASSERT_GE(pick, 0) << "block " << i;
    ++workers[pick].outstanding;
  }
  EXPECT_EQ(workers[0].outstanding, 3);
  EXPECT_EQ(workers[1].outstanding, 3);
  EXPECT_EQ(policy.Pick(workers), -1);
}

}  // namespace
}  // namespace blockserve::services
