// ContextEngine (the context service's scheduling loop) over an in-process
// dispatcher, without sockets: the same tokens as the in-process Engine for
// greedy and seeded sampling over many concurrent requests; cancellation
// frees memory and withdraws the block; dispatcher failures, duplicate
// results, validation, memory limits, shutdown.
#include "services/context/context_engine.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/context/context_metrics.h"
#include "shared/engine/engine.h"
#include "shared/metrics/metrics_registry.h"
#include "tests/services/context/local_dispatcher.h"
#include "tests/shared/engine/fixture_util.h"

namespace blockserve::services {
namespace {

using ::blockserve::testing::FixtureDir;
using ::blockserve::testing::GenerateAll;
using ::blockserve::testing::Generated;
using ::testing::HasSubstr;
using testing::LocalDispatcher;

// Runs requests through a ContextEngine and collects their updates.
std::vector<Generated> RunAll(ContextEngine& engine, const std::vector<GenerationRequest>& requests,
                              std::vector<uint64_t>* ids = nullptr) {
  std::mutex mutex;
  std::condition_variable done;
  std::vector<Generated> out(requests.size());
  size_t remaining = requests.size();
  for (size_t i = 0; i < requests.size(); ++i) {
    auto id = engine.Start(requests[i], [&, i](GenerationUpdate update) {
      std::lock_guard<std::mutex> lock(mutex);
      Generated& g = out[i];
      ++g.updates;
      g.tokens.insert(g.tokens.end(), update.tokens.begin(), update.tokens.end());
      g.logprobs.insert(g.logprobs.end(), update.logprobs.begin(), update.logprobs.end());
      if (update.finished) {
        g.reason = update.finish_reason;
        g.status = update.status;
        if (--remaining == 0) done.notify_all();
      }
    });
    if (ids) ids->push_back(id.ok() ? *id : 0);
    if (!id.ok()) {
      std::lock_guard<std::mutex> lock(mutex);
      out[i].status = id.status();
      --remaining;
    }
  }
  std::unique_lock<std::mutex> lock(mutex);
  EXPECT_TRUE(done.wait_for(lock, std::chrono::seconds(60), [&] { return remaining == 0; }));
  return out;
}

std::vector<GenerationRequest> MixedRequests(int count) {
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < count; ++i) {
    GenerationRequest r;
    for (int t = 0; t < 1 + (i * 7) % 23; ++t) r.prompt.push_back(1 + (i * 31 + t * 17) % 100);
    r.max_new_tokens = 3 + (i * 5) % 14;
    r.stop_at_eos = i % 4 == 3;
    r.return_logprobs = true;
    if (i % 3 != 0) {
      r.sampling = {.temperature = 0.9f,
                    .top_k = i % 2 ? 20 : 0,
                    .top_p = i % 4 == 1 ? 0.8f : 1.0f,
                    .seed = 1000u + i};
    }
    requests.push_back(std::move(r));
  }
  return requests;
}

class ContextEngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    backend_ = *CreateBackend({.device = "cpu", .threads = 1});
    auto model = Model::Load(FixtureDir(GetParam()), *backend_, {.load_token_decoder = false});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    dispatcher_ = std::make_unique<LocalDispatcher>(FixtureDir(GetParam()));
  }
  void TearDown() override {
    engine_.reset();
    dispatcher_.reset();
  }
  ContextEngine& MakeEngine(ContextEngine::Options options = {}) {
    auto engine = ContextEngine::Create(*model_->block_decoder(), *backend_, model_->config(),
                                        options, dispatcher_.get(), &metrics_);
    EXPECT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    return *engine_;
  }
  // The in-process engine's output for the same requests (the reference).
  std::vector<Generated> Reference(const std::vector<GenerationRequest>& requests) {
    auto backend = *CreateBackend({.device = "cpu", .threads = 1});
    auto model = *Model::Load(FixtureDir(GetParam()), *backend);
    auto engine = *Engine::Create(*model, {});
    return GenerateAll(*engine, requests);
  }
  void WaitForIdleMemory() {
    for (int i = 0; i < 500 && engine_->load().scheduler.kv_used_bytes != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  metrics::MetricsRegistry registry_;
  ContextMetrics metrics_{registry_};
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<LocalDispatcher> dispatcher_;
  std::unique_ptr<ContextEngine> engine_;
};

TEST_P(ContextEngineTest, SameTokensAsTheInProcessEngine) {
  const auto requests = MixedRequests(16);
  const auto expected = Reference(requests);
  const auto got = RunAll(MakeEngine(), requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << i << ": " << got[i].status;
    EXPECT_EQ(got[i].tokens, expected[i].tokens) << "request " << i;
    EXPECT_EQ(got[i].reason, expected[i].reason) << "request " << i;
    ASSERT_EQ(got[i].logprobs.size(), expected[i].logprobs.size());
    for (size_t t = 0; t < got[i].logprobs.size(); ++t) {
      EXPECT_NEAR(got[i].logprobs[t], expected[i].logprobs[t], 1e-5);
    }
  }
  WaitForIdleMemory();
  EXPECT_EQ(engine_->load().scheduler.kv_used_bytes, 0);
  EXPECT_EQ(engine_->open_sessions(), 0);
}

TEST_P(ContextEngineTest, AnyNumberOfPipelineGroupsGivesTheSameTokensInBatches) {
  const auto requests = MixedRequests(12);
  const auto expected = Reference(requests);
  for (int groups : {1, 3, 12}) {
    dispatcher_ = std::make_unique<LocalDispatcher>(FixtureDir(GetParam()));
    ContextEngine::Options options;
    options.pipeline_groups = groups;
    const auto got = RunAll(MakeEngine(options), requests);
    for (size_t i = 0; i < requests.size(); ++i) {
      ASSERT_TRUE(got[i].status.ok())
          << groups << " groups, request " << i << ": " << got[i].status;
      EXPECT_EQ(got[i].tokens, expected[i].tokens) << groups << " groups, request " << i;
    }
    // A step's blocks leave together: fewer batches than blocks, except
    // with a group per session.
    if (groups < 12) EXPECT_LT(dispatcher_->batches(), dispatcher_->dispatched()) << groups;
    engine_.reset();
  }
}

TEST_P(ContextEngineTest, AStepIsSplitOverWorkersOnlyWhenGroupsAreFewer) {
  dispatcher_->set_ready_workers(4);
  ContextEngine::Options options;
  options.pipeline_groups = 1;
  RunAll(MakeEngine(options), MixedRequests(4));
  EXPECT_EQ(dispatcher_->last_parts(), 4);
  engine_.reset();
  options.pipeline_groups = 0;  // one group per worker: a step is one part
  RunAll(MakeEngine(options), MixedRequests(4));
  EXPECT_EQ(dispatcher_->last_parts(), 1);
  EXPECT_EQ(metrics_.pipeline_groups.Value(), 4);
  EXPECT_EQ(metrics_.straggler_steps.Value(), 0);
}

TEST_P(ContextEngineTest, TheNextBlockIsDispatchedBeforeABlocksTokensAreDelivered) {
  // One session: the pass that makes the next block, and its dispatch, come
  // before the previous block's tokens are delivered (the workers wait for
  // the dispatch; the tokens can wait a pass).
  std::mutex mutex;
  std::vector<std::string> events;
  int dispatches = 0;
  dispatcher_->set_dispatch_observer([&](const std::vector<BlockJob>& jobs) {
    std::lock_guard<std::mutex> lock(mutex);
    for (size_t j = 0; j < jobs.size(); ++j)
      events.push_back(absl::StrCat("dispatch ", dispatches++));
  });
  GenerationRequest request;
  request.prompt = {5, 6, 7};
  request.max_new_tokens = 4 * model_->config().block_length;
  std::condition_variable done;
  bool finished = false;
  int updates = 0;
  ASSERT_TRUE(MakeEngine()
                  .Start(request,
                         [&](GenerationUpdate update) {
                           std::lock_guard<std::mutex> lock(mutex);
                           if (!update.tokens.empty()) {
                             events.push_back(absl::StrCat("tokens ", updates++));
                           }
                           finished = update.finished;
                           if (finished) done.notify_all();
                         })
                  .ok());
  std::unique_lock<std::mutex> lock(mutex);
  ASSERT_TRUE(done.wait_for(lock, std::chrono::seconds(60), [&] { return finished; }));
  // dispatch 0, dispatch 1, tokens 0, dispatch 2, tokens 1, dispatch 3,
  // tokens 2, tokens 3: the last block has no next pass to wait for.
  std::vector<std::string> expected = {"dispatch 0"};
  for (int block = 0; block < 4; ++block) {
    if (block + 1 < 4) expected.push_back(absl::StrCat("dispatch ", block + 1));
    expected.push_back(absl::StrCat("tokens ", block));
  }
  EXPECT_EQ(events, expected);
}

TEST_P(ContextEngineTest, ChunkedPrefillAndATightMemoryBudgetGiveTheSameTokens) {
  const auto requests = MixedRequests(8);
  const auto expected = Reference(requests);
  ContextEngine::Options tight;
  tight.scheduler.max_step_blocks = 1;
  tight.scheduler.max_sessions = 2;
  tight.scheduler.page_size = 2;
  const auto got = RunAll(MakeEngine(tight), requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << got[i].status;
    EXPECT_EQ(got[i].tokens, expected[i].tokens) << "request " << i;
  }
}

TEST_P(ContextEngineTest, DuplicateResultsAreIgnored) {
  const auto requests = MixedRequests(6);
  const auto expected = Reference(requests);
  dispatcher_->set_mode(LocalDispatcher::Mode::kDuplicate);
  const auto got = RunAll(MakeEngine(), requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << got[i].status;
    EXPECT_EQ(got[i].tokens, expected[i].tokens) << "request " << i;
  }
}

TEST_P(ContextEngineTest, CancelFreesTheSessionAndWithdrawsItsBlock) {
  dispatcher_->set_mode(LocalDispatcher::Mode::kWithhold);  // blocks never come back
  ContextEngine& engine = MakeEngine();
  GenerationRequest request;
  request.prompt = {1, 2, 3, 4, 5};
  request.max_new_tokens = 40;
  std::mutex mutex;
  std::condition_variable done;
  std::optional<GenerationUpdate> final_update;
  auto id = engine.Start(request, [&](GenerationUpdate update) {
    std::lock_guard<std::mutex> lock(mutex);
    if (update.finished) final_update = update;
    done.notify_all();
  });
  ASSERT_TRUE(id.ok());
  for (int i = 0; i < 500 && dispatcher_->dispatched() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(dispatcher_->dispatched(), 1);
  // The engine publishes its load at the end of the iteration that
  // dispatched the block.
  for (int i = 0; i < 500 && engine.load().scheduler.kv_used_bytes == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT(engine.load().scheduler.kv_used_bytes, 0);
  engine.Cancel(*id);
  {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(
        done.wait_for(lock, std::chrono::seconds(10), [&] { return final_update.has_value(); }));
  }
  EXPECT_EQ(final_update->finish_reason, FinishReason::kCancelled);
  WaitForIdleMemory();
  EXPECT_EQ(engine.load().scheduler.kv_used_bytes, 0);
  EXPECT_EQ(engine.load().scheduler.active_sessions, 0);
  EXPECT_EQ(dispatcher_->cancelled().count(*id), 1u);
}

TEST_P(ContextEngineTest, DispatcherFailureFailsTheSessionWithItsStatus) {
  dispatcher_->set_mode(LocalDispatcher::Mode::kFail);
  const auto got = RunAll(MakeEngine(), MixedRequests(3));
  for (const Generated& g : got) {
    EXPECT_EQ(g.status.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(g.status.message(), HasSubstr("no token worker"));
    EXPECT_EQ(g.reason, FinishReason::kError);
  }
  WaitForIdleMemory();
  EXPECT_EQ(engine_->load().scheduler.kv_used_bytes, 0);
}

TEST_P(ContextEngineTest, BadRequestsAreRefusedAtOnce) {
  ContextEngine& engine = MakeEngine();
  GenerationRequest bad;
  bad.prompt = {model_->config().vocab_size};
  auto id = engine.Start(bad, [](GenerationUpdate) {});
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(id.status().message(), HasSubstr("outside the vocabulary"));
}

TEST_P(ContextEngineTest, ARequestThatCanNeverFitTheCacheIsResourceExhausted) {
  ContextEngine::Options small;
  small.scheduler.page_size = 1;
  small.scheduler.kv_cache_bytes = 1;  // raised to one page below
  const int64_t page = PagedKvCache::PageBytes(model_->config().block_decoder, 1);
  small.scheduler.kv_cache_bytes = 2 * page;
  GenerationRequest big;
  big.prompt.assign(64, 3);
  big.max_new_tokens = 8;
  const auto got = RunAll(MakeEngine(small), {big});
  EXPECT_EQ(got[0].status.code(), absl::StatusCode::kResourceExhausted);
}

TEST_P(ContextEngineTest, ShutdownEndsOpenSessions) {
  dispatcher_->set_mode(LocalDispatcher::Mode::kWithhold);
  ContextEngine& engine = MakeEngine();
  std::atomic<int> finished{0};
  GenerationRequest request;
  request.prompt = {1, 2, 3};
  request.max_new_tokens = 10;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(engine
                    .Start(request,
                           [&](GenerationUpdate update) {
                             if (update.finished) {
                               EXPECT_EQ(update.status.code(), absl::StatusCode::kUnavailable);
                               ++finished;
                             }
                           })
                    .ok());
  }
  engine.Shutdown();
  EXPECT_EQ(finished.load(), 3);
  EXPECT_EQ(engine.Start(request, [](GenerationUpdate) {}).status().code(),
            absl::StatusCode::kUnavailable);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ContextEngineTest,
                         ::testing::Values("block_l4_r2", "block_l2_r1_inter", "block_l8_r4"));

}  // namespace
}  // namespace blockserve::services
