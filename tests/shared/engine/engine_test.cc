// Engine behaviour beyond numerical agreement: batching invariance of
// sampled output, chunked prefill, queueing under a small memory budget,
// EOS stopping, cancellation, validation and shutdown, for block and
// vanilla models (golden fixtures as the models).
#include <atomic>
#include <chrono>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/shared/engine/fixture_util.h"

namespace blockserve {
namespace {

using ::blockserve::testing::FixtureDir;
using ::blockserve::testing::GenerateAll;
using ::blockserve::testing::Generated;
using ::testing::HasSubstr;

class EngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    backend_ = *CreateBackend({.device = "cpu", .threads = 2});
    auto model = Model::Load(FixtureDir(GetParam()), *backend_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }
  std::unique_ptr<Engine> MakeEngine(EngineOptions options = {}) {
    auto engine = Engine::Create(*model_, options);
    EXPECT_TRUE(engine.ok()) << engine.status();
    return std::move(*engine);
  }
  // Requests of assorted prompt lengths and sampling settings.
  std::vector<GenerationRequest> MixedRequests(int count) {
    std::vector<GenerationRequest> requests;
    for (int i = 0; i < count; ++i) {
      GenerationRequest r;
      for (int t = 0; t < 1 + (i * 7) % 23; ++t) r.prompt.push_back(1 + (i * 31 + t * 17) % 100);
      r.max_new_tokens = 3 + (i * 5) % 14;
      r.stop_at_eos = false;
      r.return_logprobs = true;
      if (i % 3 != 0)
        r.sampling = {.temperature = 0.9f,
                      .top_k = i % 2 ? 20 : 0,
                      .top_p = i % 4 == 1 ? 0.8f : 1.0f,
                      .seed = 1000u + i};
      requests.push_back(std::move(r));
    }
    return requests;
  }
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
};

TEST_P(EngineTest, SampledOutputDoesNotDependOnTheBatch) {
  const auto requests = MixedRequests(12);
  auto engine = MakeEngine();
  const auto batched = GenerateAll(*engine, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto alone = GenerateAll(*engine, {requests[i]});
    ASSERT_TRUE(batched[i].status.ok()) << batched[i].status;
    EXPECT_EQ(alone[0].tokens, batched[i].tokens) << "request " << i;
    EXPECT_EQ(batched[i].tokens.size(), static_cast<size_t>(requests[i].max_new_tokens));
    EXPECT_EQ(batched[i].reason, FinishReason::kLength);
  }
}

TEST_P(EngineTest, SmallStepsAndMemoryBudgetGiveTheSameOutput) {
  const auto requests = MixedRequests(10);
  auto reference = GenerateAll(*MakeEngine(), requests);
  EngineOptions tight;
  // One prefill block (or token) per step, one session at a time, and a
  // cache that holds only a couple of sessions: everything queues.
  tight.context.max_step_blocks = 1;
  tight.context.max_sessions = 2;
  tight.context.page_size = 2;
  tight.context.kv_cache_bytes = 1;  // rounded up below: set from page size
  tight.vanilla.max_step_tokens = 3;
  tight.vanilla.max_sessions = 2;
  tight.vanilla.page_size = 4;
  const NeoxStackConfig& stack =
      model_->is_block() ? model_->config().block_decoder : model_->config().vanilla;
  tight.context.kv_cache_bytes = PagedKvCache::PageBytes(stack, 2) * 24;
  tight.vanilla.kv_cache_bytes = PagedKvCache::PageBytes(stack, 4) * 12;
  tight.token_decoder.max_active_blocks = 3;
  const auto constrained = GenerateAll(*MakeEngine(tight), requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(constrained[i].status.ok()) << constrained[i].status;
    EXPECT_EQ(constrained[i].tokens, reference[i].tokens) << "request " << i;
  }
}

TEST_P(EngineTest, AnF16KvCacheHoldsTwiceTheEntriesAndStaysCloseToF32) {
  // Greedy requests: the log-probabilities of the tokens both caches chose
  // agree to F16 rounding (the first token always; later ones while the
  // two outputs are still equal).
  std::vector<GenerationRequest> requests = MixedRequests(8);
  for (GenerationRequest& r : requests) r.sampling = {};
  EngineOptions f16;
  f16.context.kv_dtype = DType::kF16;
  f16.vanilla.kv_dtype = DType::kF16;
  auto f32_engine = MakeEngine();
  auto f16_engine = MakeEngine(f16);
  const auto exact = GenerateAll(*f32_engine, requests);
  const auto rounded = GenerateAll(*f16_engine, requests);
  int compared = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(rounded[i].status.ok()) << rounded[i].status;
    ASSERT_EQ(rounded[i].tokens.size(), exact[i].tokens.size());
    for (size_t t = 0; t < exact[i].tokens.size(); ++t) {
      EXPECT_NEAR(rounded[i].logprobs[t], exact[i].logprobs[t], 2e-2) << i << " token " << t;
      ++compared;
      if (rounded[i].tokens[t] != exact[i].tokens[t]) break;
    }
  }
  EXPECT_GE(compared, 8);
  // The same byte budget holds the same bytes, so twice the entries.
  EXPECT_EQ(f16_engine->stats().kv_capacity_bytes, f32_engine->stats().kv_capacity_bytes);
  const NeoxStackConfig& stack =
      model_->is_block() ? model_->config().block_decoder : model_->config().vanilla;
  EXPECT_EQ(PagedKvCache::PageBytes(stack, 16, DType::kF16) * 2,
            PagedKvCache::PageBytes(stack, 16, DType::kF32));
  // Anything else is refused.
  EngineOptions bf16;
  bf16.context.kv_dtype = DType::kBF16;
  bf16.vanilla.kv_dtype = DType::kBF16;
  auto refused = Engine::Create(*model_, bf16);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("f32 or f16"));
}

TEST_P(EngineTest, SameSeedSameTokensDifferentSeedDifferentTokens) {
  GenerationRequest r;
  r.prompt = {5, 6, 7};
  r.max_new_tokens = 24;
  r.stop_at_eos = false;
  r.sampling = {.temperature = 1.5f, .seed = 42};
  GenerationRequest other = r;
  other.sampling.seed = 43;
  auto engine = MakeEngine();
  const auto out = GenerateAll(*engine, {r, r, other});
  EXPECT_EQ(out[0].tokens, out[1].tokens);
  EXPECT_NE(out[0].tokens, out[2].tokens);
}

TEST_P(EngineTest, StopsAtEosWhenAsked) {
  // Find a sampled continuation that contains EOS, then check stopping.
  auto engine = MakeEngine();
  for (uint64_t seed = 0; seed < 200; ++seed) {
    GenerationRequest r;
    r.prompt = {9, 8};
    r.max_new_tokens = 40;
    r.stop_at_eos = false;
    r.sampling = {.temperature = 2.0f, .seed = seed};
    const auto free_run = GenerateAll(*engine, {r})[0];
    auto eos = std::find(free_run.tokens.begin(), free_run.tokens.end(), 0);
    if (eos == free_run.tokens.end()) continue;
    r.stop_at_eos = true;
    const auto stopped = GenerateAll(*engine, {r})[0];
    EXPECT_EQ(stopped.reason, FinishReason::kEos);
    EXPECT_EQ(stopped.tokens, std::vector<int32_t>(free_run.tokens.begin(), eos + 1));
    return;
  }
  GTEST_SKIP() << "no sampled continuation hit EOS";
}

TEST_P(EngineTest, RejectsBadRequestsWithPreciseMessages) {
  auto engine = MakeEngine();
  GenerationRequest r;
  r.prompt = {};
  EXPECT_THAT(engine->Enqueue(r, [](GenerationUpdate) {}).status().message(),
              HasSubstr("at least one token"));
  r.prompt = {1, model_->config().vocab_size};
  auto status = engine->Enqueue(r, [](GenerationUpdate) {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("prompt token 1 has id"));
  r.prompt = {1};
  r.max_new_tokens = 0;
  EXPECT_THAT(engine->Enqueue(r, [](GenerationUpdate) {}).status().message(),
              HasSubstr("max_new_tokens"));
  r.max_new_tokens = 4;
  r.sampling.top_p = 0;
  EXPECT_THAT(engine->Enqueue(r, [](GenerationUpdate) {}).status().message(), HasSubstr("top_p"));
  r.sampling = {.temperature = -1};
  EXPECT_THAT(engine->Enqueue(r, [](GenerationUpdate) {}).status().message(),
              HasSubstr("temperature"));
}

TEST_P(EngineTest, TooLargeForTheCacheIsResourceExhausted) {
  EngineOptions small;
  const NeoxStackConfig& stack =
      model_->is_block() ? model_->config().block_decoder : model_->config().vanilla;
  small.context.kv_cache_bytes = PagedKvCache::PageBytes(stack, small.context.page_size);
  small.vanilla.kv_cache_bytes = PagedKvCache::PageBytes(stack, small.vanilla.page_size);
  auto engine = MakeEngine(small);
  GenerationRequest r;
  r.prompt = std::vector<int32_t>(200, 3);
  r.max_new_tokens = 200;
  const auto out = GenerateAll(*engine, {r});
  EXPECT_EQ(out[0].status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(out[0].reason, FinishReason::kError);
}

TEST_P(EngineTest, CancelFreesTheSessionAndEndsTheStream) {
  auto engine = MakeEngine();
  std::mutex mutex;
  std::condition_variable cv;
  Generated out;
  bool finished = false;
  GenerationRequest r;
  r.prompt = {1, 2, 3, 4, 5};
  r.max_new_tokens = 100000 / 2;
  r.stop_at_eos = false;
  auto id = engine->Enqueue(r, [&](GenerationUpdate update) {
    std::lock_guard<std::mutex> lock(mutex);
    out.tokens.insert(out.tokens.end(), update.tokens.begin(), update.tokens.end());
    if (update.finished) {
      out.reason = update.finish_reason;
      finished = true;
      cv.notify_all();
    }
  });
  ASSERT_TRUE(id.ok());
  // Wait until it is generating, then cancel.
  for (int i = 0; i < 500 && engine->stats().generated_tokens == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_GT(engine->stats().kv_used_bytes, 0);
  engine->Cancel(*id);
  std::unique_lock<std::mutex> lock(mutex);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return finished; }));
  EXPECT_EQ(out.reason, FinishReason::kCancelled);
  lock.unlock();
  for (int i = 0; i < 100 && engine->stats().active_requests != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(engine->stats().active_requests, 0);
  EXPECT_EQ(engine->stats().kv_used_bytes, 0);
}

TEST_P(EngineTest, ShutdownEndsOpenRequestsAndRefusesNewOnes) {
  auto engine = MakeEngine();
  std::atomic<int> cancelled{0};
  GenerationRequest r;
  r.prompt = {1, 2, 3};
  r.max_new_tokens = 50000;
  r.stop_at_eos = false;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(engine
                    ->Enqueue(r,
                              [&](GenerationUpdate u) {
                                if (u.finished && u.finish_reason == FinishReason::kCancelled)
                                  ++cancelled;
                              })
                    .ok());
  }
  engine->Shutdown();
  EXPECT_EQ(cancelled.load(), 3);
  EXPECT_EQ(engine->Enqueue(r, [](GenerationUpdate) {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Models, EngineTest,
                         ::testing::Values("block_l4_r2", "block_l8_r1_odd_bf16",
                                           "vanilla_parallel_rot025"));

}  // namespace
}  // namespace blockserve
