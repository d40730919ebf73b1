// ContextScheduler's pipeline groups, on a fake clock: sessions are spread
// over the groups, one Step() advances one group, a group waits for all of
// its blocks unless a straggler holds it past group_wait_s (counted from its
// own round trip), prompts never wait, and SetPipelineGroups() regroups at
// run time.
#include "shared/engine/context_scheduler.h"

#include <algorithm>
#include <set>

#include "gtest/gtest.h"
#include "shared/model/model.h"
#include "tests/shared/engine/fixture_util.h"

namespace blockserve {
namespace {

using ::blockserve::testing::FixtureDir;

class ContextSchedulerGroupsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = *CreateBackend({.device = "cpu", .threads = 1});
    auto model = Model::Load(FixtureDir("block_l4_r2"), *backend_, {.load_token_decoder = false});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }

  std::unique_ptr<ContextScheduler> Make(int groups, int max_step_blocks = 256) {
    ContextScheduler::Options options;
    options.pipeline_groups = groups;
    options.group_wait_s = 0.05;
    options.max_step_blocks = max_step_blocks;
    options.clock = [this] { return now_; };
    auto scheduler =
        ContextScheduler::Create(*model_->block_decoder(), *backend_, model_->config(), options);
    EXPECT_TRUE(scheduler.ok()) << scheduler.status();
    return std::move(*scheduler);
  }

  static GenerationRequest Request(int prompt_tokens = 5) {
    GenerationRequest request;
    for (int t = 0; t < prompt_tokens; ++t) request.prompt.push_back(1 + t % 50);
    request.max_new_tokens = 64;
    request.stop_at_eos = false;
    return request;
  }

  // The sessions of a step's jobs.
  static std::set<uint64_t> Sessions(const ContextScheduler::StepOutput& step) {
    std::set<uint64_t> ids;
    for (const BlockJob& job : step.jobs) ids.insert(job.session_id);
    return ids;
  }

  // A decoded block for a job: num_tokens ordinary tokens.
  static BlockResult Decoded(const BlockJob& job) {
    BlockResult result;
    result.session_id = job.session_id;
    result.block_index = job.block_index;
    result.tokens.assign(job.num_tokens, 7);
    return result;
  }

  double now_ = 100.0;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
};

TEST_F(ContextSchedulerGroupsTest, OneGroupPerStepAndTheGroupsAlternate) {
  auto scheduler = Make(2);
  for (uint64_t id = 1; id <= 6; ++id) ASSERT_TRUE(scheduler->AddSession(id, Request()).ok());
  ASSERT_TRUE(scheduler->HasStepWork());
  ContextScheduler::StepOutput first = scheduler->Step();
  ASSERT_TRUE(first.failures.empty());
  EXPECT_EQ(first.jobs.size(), 3u);  // half of the sessions
  ContextScheduler::StepOutput second = scheduler->Step();
  EXPECT_EQ(second.jobs.size(), 3u);
  std::set<uint64_t> all = Sessions(first);
  for (uint64_t id : Sessions(second)) EXPECT_TRUE(all.insert(id).second) << id << " stepped twice";
  EXPECT_EQ(all.size(), 6u);
  // Both groups are at the workers: nothing to step, nothing to wait for.
  EXPECT_FALSE(scheduler->HasStepWork());
  EXPECT_FALSE(scheduler->NextGroupRelease().has_value());

  // The first group comes back whole: it steps again, alone.
  for (const BlockJob& job : first.jobs) ASSERT_TRUE(scheduler->CompleteBlock(Decoded(job)));
  ASSERT_TRUE(scheduler->HasStepWork());
  ContextScheduler::StepOutput third = scheduler->Step();
  EXPECT_EQ(Sessions(third), Sessions(first));
  EXPECT_EQ(scheduler->stats().last_step_blocks, 3);
}

TEST_F(ContextSchedulerGroupsTest, AGroupWaitsForItsStragglerOnlyUpToGroupWait) {
  auto scheduler = Make(2);
  for (uint64_t id = 1; id <= 4; ++id) ASSERT_TRUE(scheduler->AddSession(id, Request()).ok());
  ContextScheduler::StepOutput first = scheduler->Step();
  scheduler->Step();
  ASSERT_EQ(first.jobs.size(), 2u);

  // One block of the group is back, the other is late.
  ASSERT_TRUE(scheduler->CompleteBlock(Decoded(first.jobs[0])));
  EXPECT_FALSE(scheduler->HasStepWork());
  ASSERT_TRUE(scheduler->NextGroupRelease().has_value());
  EXPECT_DOUBLE_EQ(*scheduler->NextGroupRelease(), now_ + 0.05);

  now_ += 0.049;
  EXPECT_FALSE(scheduler->HasStepWork());
  now_ += 0.002;
  ASSERT_TRUE(scheduler->HasStepWork());
  EXPECT_EQ(scheduler->stats().straggler_steps, 0);
  ContextScheduler::StepOutput alone = scheduler->Step();
  ASSERT_EQ(alone.jobs.size(), 1u);
  EXPECT_EQ(alone.jobs[0].session_id, first.jobs[0].session_id);
  EXPECT_EQ(scheduler->stats().straggler_steps, 1);
  EXPECT_EQ(scheduler->stats().pipeline_groups, 2);

  // The straggler arrives and waits for the rest of its group again.
  ASSERT_TRUE(scheduler->CompleteBlock(Decoded(first.jobs[1])));
  EXPECT_FALSE(scheduler->HasStepWork());
  ASSERT_TRUE(scheduler->CompleteBlock(Decoded(alone.jobs[0])));
  ASSERT_TRUE(scheduler->HasStepWork());
  EXPECT_EQ(scheduler->Step().jobs.size(), 2u);  // together again
}

TEST_F(ContextSchedulerGroupsTest, NewSessionsJoinTheSmallestGroupAndTheirPromptsDoNotWait) {
  auto scheduler = Make(2);
  for (uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(scheduler->AddSession(id, Request()).ok());
  ContextScheduler::StepOutput first = scheduler->Step();
  ContextScheduler::StepOutput second = scheduler->Step();
  ASSERT_EQ(first.jobs.size() + second.jobs.size(), 3u);
  const ContextScheduler::StepOutput& smaller =
      first.jobs.size() < second.jobs.size() ? first : second;
  ASSERT_EQ(smaller.jobs.size(), 1u);

  // A new session goes to the group of one, whose block is out; its prompt
  // is read at once, alone.
  ASSERT_TRUE(scheduler->AddSession(10, Request()).ok());
  ASSERT_TRUE(scheduler->HasStepWork());
  ContextScheduler::StepOutput prompt = scheduler->Step();
  ASSERT_EQ(Sessions(prompt), (std::set<uint64_t>{10}));
  // From then on it moves with its group: the first block back waits for it.
  ASSERT_TRUE(scheduler->CompleteBlock(Decoded(smaller.jobs[0])));
  EXPECT_FALSE(scheduler->HasStepWork());
  ASSERT_TRUE(scheduler->CompleteBlock(Decoded(prompt.jobs[0])));
  ContextScheduler::StepOutput joined = scheduler->Step();
  EXPECT_EQ(Sessions(joined), (std::set<uint64_t>{smaller.jobs[0].session_id, 10}));
}

TEST_F(ContextSchedulerGroupsTest, AFirstBlockSentAfterTheGroupsIsNotAStraggler) {
  auto scheduler = Make(2);
  for (uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(scheduler->AddSession(id, Request()).ok());
  ContextScheduler::StepOutput first = scheduler->Step();
  ContextScheduler::StepOutput second = scheduler->Step();
  const ContextScheduler::StepOutput& smaller =
      first.jobs.size() < second.jobs.size() ? first : second;
  ASSERT_EQ(smaller.jobs.size(), 1u);

  // The group's block left at t0; a new session's prompt is read 30 ms
  // later, and its first block leaves then.
  const double t0 = now_;
  now_ = t0 + 0.03;
  ASSERT_TRUE(scheduler->AddSession(10, Request()).ok());
  ContextScheduler::StepOutput prompt = scheduler->Step();
  ASSERT_EQ(Sessions(prompt), (std::set<uint64_t>{10}));
  // The group's block takes 40 ms; the new block gets as long, plus
  // group_wait_s, before the group steps without it.
  now_ = t0 + 0.04;
  ASSERT_TRUE(scheduler->CompleteBlock(Decoded(smaller.jobs[0])));
  ASSERT_TRUE(scheduler->NextGroupRelease().has_value());
  EXPECT_NEAR(*scheduler->NextGroupRelease(), t0 + 0.03 + 0.04 + 0.05, 1e-9);
  now_ = t0 + 0.04 + 0.05 + 0.01;  // group_wait_s after the first block came back
  EXPECT_FALSE(scheduler->HasStepWork());
  // It comes back in time: the group steps whole, nobody left behind.
  now_ = t0 + 0.11;
  ASSERT_TRUE(scheduler->CompleteBlock(Decoded(prompt.jobs[0])));
  ContextScheduler::StepOutput joined = scheduler->Step();
  EXPECT_EQ(Sessions(joined), (std::set<uint64_t>{smaller.jobs[0].session_id, 10}));
  EXPECT_EQ(scheduler->stats().straggler_steps, 0);

  // A block that stays out past its round trip plus group_wait_s is late.
  now_ = t0 + 0.12;
  for (const BlockJob& job : joined.jobs) {
    if (job.session_id == 10) continue;
    now_ += 0.03;
    ASSERT_TRUE(scheduler->CompleteBlock(Decoded(job)));
  }
  now_ = t0 + 0.12 + 0.03 + 0.05 - 0.001;
  EXPECT_FALSE(scheduler->HasStepWork());
  now_ += 0.002;
  ASSERT_TRUE(scheduler->HasStepWork());
  EXPECT_EQ(Sessions(scheduler->Step()), (std::set<uint64_t>{smaller.jobs[0].session_id}));
  EXPECT_EQ(scheduler->stats().straggler_steps, 1);
}

TEST_F(ContextSchedulerGroupsTest, ALongPromptsChunksDoNotWaitForTheGroup) {
  // Two blocks per forward pass: a 40-token prompt (10 blocks) takes five.
  auto scheduler = Make(2, /*max_step_blocks=*/2);
  ASSERT_TRUE(scheduler->AddSession(1, Request(/*prompt_tokens=*/4)).ok());
  ASSERT_TRUE(scheduler->AddSession(2, Request(/*prompt_tokens=*/4)).ok());
  ContextScheduler::StepOutput a = scheduler->Step();
  ContextScheduler::StepOutput b = scheduler->Step();
  ASSERT_EQ(a.jobs.size(), 1u);
  ASSERT_EQ(b.jobs.size(), 1u);
  // The long prompt joins a group whose block is out; after its first
  // chunk, its later chunks go on without waiting for that block.
  ASSERT_TRUE(scheduler->AddSession(3, Request(/*prompt_tokens=*/40)).ok());
  ASSERT_TRUE(scheduler->CompleteBlock(Decoded(a.jobs[0])));
  int steps = 0;
  bool job_for_3 = false;
  while (scheduler->HasStepWork() && steps < 10) {
    ++steps;
    for (const BlockJob& job : scheduler->Step().jobs) job_for_3 |= job.session_id == 3;
  }
  EXPECT_TRUE(job_for_3) << "the prompt was not read within " << steps << " steps";
}

TEST_F(ContextSchedulerGroupsTest, RegroupingAtRunTime) {
  auto scheduler = Make(2);
  for (uint64_t id = 1; id <= 4; ++id) ASSERT_TRUE(scheduler->AddSession(id, Request()).ok());
  ContextScheduler::StepOutput first = scheduler->Step();
  ContextScheduler::StepOutput second = scheduler->Step();
  // Back to one group: every ready session steps at once, nothing waits.
  scheduler->SetPipelineGroups(1);
  EXPECT_EQ(scheduler->pipeline_groups(), 1);
  ASSERT_TRUE(scheduler->CompleteBlock(Decoded(first.jobs[0])));
  ASSERT_TRUE(scheduler->HasStepWork());
  ContextScheduler::StepOutput eager = scheduler->Step();
  ASSERT_EQ(eager.jobs.size(), 1u);
  for (const BlockJob& job : second.jobs) ASSERT_TRUE(scheduler->CompleteBlock(Decoded(job)));
  ASSERT_TRUE(scheduler->CompleteBlock(Decoded(first.jobs[1])));
  ContextScheduler::StepOutput rest = scheduler->Step();
  ASSERT_EQ(rest.jobs.size(), 3u);
  // Four groups over four sessions: one session per step, each once.
  for (const BlockJob& job : eager.jobs) ASSERT_TRUE(scheduler->CompleteBlock(Decoded(job)));
  for (const BlockJob& job : rest.jobs) ASSERT_TRUE(scheduler->CompleteBlock(Decoded(job)));
  scheduler->SetPipelineGroups(4);
  std::set<uint64_t> stepped;
  while (scheduler->HasStepWork()) {
    ContextScheduler::StepOutput step = scheduler->Step();
    ASSERT_EQ(step.jobs.size(), 1u);
    EXPECT_TRUE(stepped.insert(step.jobs[0].session_id).second);
    ASSERT_LE(stepped.size(), 4u);
  }
  EXPECT_EQ(stepped.size(), 4u);
}

TEST_F(ContextSchedulerGroupsTest, NegativeOptionsAreRejected) {
  ContextScheduler::Options options;
  options.pipeline_groups = -1;
  auto scheduler =
      ContextScheduler::Create(*model_->block_decoder(), *backend_, model_->config(), options);
  ASSERT_FALSE(scheduler.ok());
  EXPECT_EQ(scheduler.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace blockserve
