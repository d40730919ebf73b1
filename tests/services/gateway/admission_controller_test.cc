// AdmissionController: bounded concurrency and queue, FIFO hand-over,
// withdrawal of queued requests.
#include "services/gateway/admission_controller.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blockserve::services {
namespace {

using Decision = AdmissionController::Decision;
using ::testing::HasSubstr;

TEST(AdmissionControllerTest, AdmitsUpToTheLimitThenQueuesThenRejects) {
  AdmissionController admission({.max_running = 2, .max_queued = 1});
  EXPECT_EQ(admission.Enter(1, {}), Decision::kAdmitted);
  EXPECT_EQ(admission.Enter(2, {}), Decision::kAdmitted);
  EXPECT_EQ(admission.Enter(3, {}), Decision::kQueued);
  EXPECT_EQ(admission.Enter(4, {}), Decision::kRejected);
  EXPECT_EQ(admission.running(), 2);
  EXPECT_EQ(admission.queued(), 1);
  const absl::Status rejection = admission.Rejection();
  EXPECT_EQ(rejection.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(rejection.message(), HasSubstr("2 requests running, 1 queued"));
}

TEST(AdmissionControllerTest, ReleaseHandsTheSlotToTheOldestQueuedRequest) {
  AdmissionController admission({.max_running = 1, .max_queued = 3});
  std::vector<int> admitted;
  ASSERT_EQ(admission.Enter(1, {}), Decision::kAdmitted);
  ASSERT_EQ(admission.Enter(2, [&] { admitted.push_back(2); }), Decision::kQueued);
  ASSERT_EQ(admission.Enter(3, [&] { admitted.push_back(3); }), Decision::kQueued);
  admission.Release();
  EXPECT_EQ(admitted, (std::vector<int>{2}));
  EXPECT_EQ(admission.running(), 1);
  admission.Release();
  EXPECT_EQ(admitted, (std::vector<int>{2, 3}));
  admission.Release();
  EXPECT_EQ(admission.running(), 0);
  EXPECT_EQ(admission.queued(), 0);
}

TEST(AdmissionControllerTest, NewRequestsDoNotOvertakeTheQueue) {
  AdmissionController admission({.max_running = 1, .max_queued = 2});
  ASSERT_EQ(admission.Enter(1, {}), Decision::kAdmitted);
  bool second_admitted = false;
  ASSERT_EQ(admission.Enter(2, [&] { second_admitted = true; }), Decision::kQueued);
  admission.Release();  // slot goes to 2
  EXPECT_TRUE(second_admitted);
  EXPECT_EQ(admission.Enter(3, {}), Decision::kQueued);  // 2 is running
}

TEST(AdmissionControllerTest, WithdrawnRequestsAreNeverAdmitted) {
  AdmissionController admission({.max_running = 1, .max_queued = 2});
  ASSERT_EQ(admission.Enter(1, {}), Decision::kAdmitted);
  bool called = false;
  ASSERT_EQ(admission.Enter(2, [&] { called = true; }), Decision::kQueued);
  EXPECT_TRUE(admission.Withdraw(2));
  EXPECT_FALSE(admission.Withdraw(2));
  admission.Release();
  EXPECT_FALSE(called);
  EXPECT_EQ(admission.running(), 0);
}

TEST(AdmissionControllerTest, ZeroQueueRejectsAsSoonAsTheSlotsAreTaken) {
  AdmissionController admission({.max_running = 1, .max_queued = 0});
  EXPECT_EQ(admission.Enter(1, {}), Decision::kAdmitted);
  EXPECT_EQ(admission.Enter(2, {}), Decision::kRejected);
  admission.Release();
  EXPECT_EQ(admission.Enter(3, {}), Decision::kAdmitted);
}

}  // namespace
}  // namespace blockserve::services
