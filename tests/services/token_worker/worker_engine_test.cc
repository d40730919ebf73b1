// WorkerEngine: the token worker's engine thread, without gRPC: results
// equal decoding alone, connections are separate session-id spaces,
// cancellation and disconnection drop blocks, load and draining reports.
#include "services/token_worker/worker_engine.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/model/model.h"
#include "tests/services/test_blocks.h"

namespace blockserve::services {
namespace {

using ::testing::HasSubstr;

// Collects what a connection's sink receives.
struct Inbox {
  std::mutex mutex;
  std::condition_variable changed;
  std::map<uint64_t, BlockResult> results;  // by session
  int replies = 0;
  int replies_with_results = 0;
  WorkerEngine::Load last_load;

  WorkerEngine::Sink Sink() {
    return [this](std::vector<BlockResult> batch, const WorkerEngine::Load& load) {
      std::lock_guard<std::mutex> lock(mutex);
      ++replies;
      if (!batch.empty()) ++replies_with_results;
      last_load = load;
      for (BlockResult& r : batch) results[r.session_id] = std::move(r);
      changed.notify_all();
    };
  }
  bool WaitFor(size_t count, double seconds = 10) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, std::chrono::duration<double>(seconds),
                            [&] { return results.size() >= count; });
  }
};

class WorkerEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = *CreateBackend({.device = "cpu", .threads = 1});
    auto model =
        Model::Load(testing::ModelDir("block_l4_r2"), *backend_, {.load_block_decoder = false});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    auto engine = WorkerEngine::Create(*model_->token_decoder(), *backend_, {}, nullptr);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }

  BlockJob Job(uint64_t session, uint32_t seed, int tokens = 4, float temperature = 0.8f) {
    return testing::MakeJob(model_->token_decoder()->context_size(), session, seed, tokens,
                            temperature);
  }
  BlockResult Alone(const BlockJob& job) { return testing::DecodeAlone(model_->directory(), job); }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<WorkerEngine> engine_;
};

TEST_F(WorkerEngineTest, BatchedBlocksDecodeAsTheyWouldAlone) {
  Inbox inbox;
  const uint64_t connection = engine_->Connect(inbox.Sink());
  std::vector<BlockJob> jobs;
  for (uint64_t s = 1; s <= 12; ++s) {
    jobs.push_back(Job(s, 100 + s, 1 + s % 4, s % 3 == 0 ? 0.0f : 0.9f));
    engine_->Submit(connection, jobs.back());
  }
  ASSERT_TRUE(inbox.WaitFor(jobs.size()));
  for (const BlockJob& job : jobs) {
    const BlockResult alone = Alone(job);
    const BlockResult& batched = inbox.results.at(job.session_id);
    ASSERT_TRUE(batched.status.ok()) << batched.status;
    EXPECT_EQ(batched.block_index, job.block_index);
    EXPECT_EQ(batched.tokens, alone.tokens) << "session " << job.session_id;
    ASSERT_EQ(batched.logprobs.size(), alone.logprobs.size());
    for (size_t i = 0; i < alone.logprobs.size(); ++i) {
      EXPECT_NEAR(batched.logprobs[i], alone.logprobs[i], 1e-5);
    }
  }
  EXPECT_EQ(engine_->outstanding(), 0);
}

TEST_F(WorkerEngineTest, ASubmittedBatchDecodesInTheSameForwardPasses) {
  Inbox inbox;
  const uint64_t connection = engine_->Connect(inbox.Sink());
  std::vector<BlockJob> jobs;
  for (uint64_t s = 1; s <= 6; ++s) jobs.push_back(Job(s, 200 + s, 4));
  engine_->SubmitBatch(connection, jobs);
  ASSERT_TRUE(inbox.WaitFor(jobs.size()));
  // All six started in one pass, so all six finished in one: one reply.
  EXPECT_EQ(inbox.replies_with_results, 1);
  for (const BlockJob& job : jobs) {
    EXPECT_EQ(inbox.results.at(job.session_id).tokens, Alone(job).tokens) << job.session_id;
  }
  EXPECT_EQ(engine_->outstanding(), 0);
}

TEST_F(WorkerEngineTest, ConnectionsAreSeparateSessionIdSpaces) {
  Inbox a, b;
  const uint64_t ca = engine_->Connect(a.Sink());
  const uint64_t cb = engine_->Connect(b.Sink());
  const BlockJob job_a = Job(7, 1);
  const BlockJob job_b = Job(7, 2);  // same session id, different block
  engine_->Submit(ca, job_a);
  engine_->Submit(cb, job_b);
  ASSERT_TRUE(a.WaitFor(1));
  ASSERT_TRUE(b.WaitFor(1));
  EXPECT_EQ(a.results.at(7).tokens, Alone(job_a).tokens);
  EXPECT_EQ(b.results.at(7).tokens, Alone(job_b).tokens);
  EXPECT_EQ(engine_->connections(), 2);
}

TEST_F(WorkerEngineTest, CancelledAndDisconnectedBlocksGetNoResult) {
  Inbox kept, cancelled, gone;
  const uint64_t c1 = engine_->Connect(kept.Sink());
  const uint64_t c2 = engine_->Connect(cancelled.Sink());
  const uint64_t c3 = engine_->Connect(gone.Sink());
  // Post the whole sequence from inside a sink (on the engine thread), so
  // that the engine applies it in one go, in order, before its next step:
  // otherwise a block could finish before its cancellation arrives.
  std::atomic<bool> posted{false};
  engine_->Connect([&](std::vector<BlockResult>, const WorkerEngine::Load&) {
    if (posted.exchange(true)) return;
    engine_->Submit(c2, Job(1, 1));
    engine_->Cancel(c2, 1);
    engine_->Submit(c3, Job(1, 2));
    engine_->Disconnect(c3);
    engine_->Submit(c1, Job(1, 3));
  });
  ASSERT_TRUE(kept.WaitFor(1));
  EXPECT_TRUE(cancelled.results.empty());
  EXPECT_TRUE(gone.results.empty());
  EXPECT_EQ(engine_->outstanding(), 0);
  EXPECT_EQ(engine_->connections(), 3);
}

TEST_F(WorkerEngineTest, ABlockTheModelCannotDecodeFailsAlone) {
  Inbox inbox;
  const uint64_t connection = engine_->Connect(inbox.Sink());
  BlockJob bad = Job(1, 1);
  bad.context.resize(3);
  engine_->Submit(connection, bad);
  engine_->Submit(connection, Job(2, 2));
  ASSERT_TRUE(inbox.WaitFor(2));
  EXPECT_EQ(inbox.results.at(1).status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(inbox.results.at(1).status.message(), HasSubstr("context embedding has 3 values"));
  EXPECT_TRUE(inbox.results.at(2).status.ok());
}

TEST_F(WorkerEngineTest, ConnectGreetsAndDrainingIsBroadcast) {
  Inbox inbox;
  engine_->Connect(inbox.Sink());
  {
    std::unique_lock<std::mutex> lock(inbox.mutex);
    ASSERT_TRUE(
        inbox.changed.wait_for(lock, std::chrono::seconds(5), [&] { return inbox.replies >= 1; }));
    EXPECT_FALSE(inbox.last_load.draining);
    EXPECT_EQ(inbox.last_load.max_active_blocks, 256);
  }
  engine_->SetDraining();
  std::unique_lock<std::mutex> lock(inbox.mutex);
  ASSERT_TRUE(inbox.changed.wait_for(lock, std::chrono::seconds(5),
                                     [&] { return inbox.last_load.draining; }));
}

TEST_F(WorkerEngineTest, WarmUpDecodesOneBlock) {
  EXPECT_TRUE(engine_->WarmUp(model_->token_decoder()->context_size()).ok());
  EXPECT_EQ(engine_->outstanding(), 0);
}

}  // namespace
}  // namespace blockserve::services
