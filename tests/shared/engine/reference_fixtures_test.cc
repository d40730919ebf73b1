// The engine against the independent PyTorch reference: for every golden
// fixture (block and vanilla models, F32/BF16/F16, several shapes), scoring
// log-probabilities within 1e-4 and greedy continuations token for token,
// alone and batched with the fixture's other prompts.
#include <cmath>

#include "gtest/gtest.h"
#include "shared/engine/scorer.h"
#include "tests/shared/engine/fixture_util.h"

namespace blockserve {
namespace {

using ::blockserve::testing::FixtureDir;
using ::blockserve::testing::FixtureNames;
using ::blockserve::testing::GenerateAll;
using ::blockserve::testing::LoadExpected;

class ReferenceFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    backend_ = *CreateBackend({.device = "cpu", .threads = 2});
    absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(FixtureDir(GetParam()), *backend_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    expected_ = LoadExpected(GetParam());
  }
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  nlohmann::json expected_;
};

TEST_P(ReferenceFixtureTest, KindMatches) {
  EXPECT_EQ(model_->is_block(), expected_["kind"] == "block");
}

TEST_P(ReferenceFixtureTest, ScoresMatchReference) {
  for (const auto& item : expected_["score"]) {
    const std::vector<int32_t> tokens = item["tokens"];
    absl::StatusOr<ScoreResult> result = ScoreTokens(*model_, tokens);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->logprobs.size(), tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      const auto& want = item["logprobs"][i];
      if (want.is_null()) {
        EXPECT_FALSE(result->logprobs[i].has_value()) << "token " << i << " must not be scored";
      } else {
        ASSERT_TRUE(result->logprobs[i].has_value()) << "token " << i << " must be scored";
        EXPECT_NEAR(*result->logprobs[i], want.get<double>(), 1e-4)
            << "token " << i << " of a " << tokens.size() << "-token sequence";
      }
    }
  }
}

TEST_P(ReferenceFixtureTest, ScoresDoNotDependOnChunking) {
  const std::vector<int32_t> tokens = expected_["score"].back()["tokens"];
  absl::StatusOr<ScoreResult> whole = ScoreTokens(*model_, tokens);
  absl::StatusOr<ScoreResult> chunked =
      ScoreTokens(*model_, tokens, {.chunk_rows = 3, .token_decoder_blocks = 2});
  ASSERT_TRUE(whole.ok() && chunked.ok());
  for (size_t i = 0; i < tokens.size(); ++i) {
    ASSERT_EQ(whole->logprobs[i].has_value(), chunked->logprobs[i].has_value());
    if (whole->logprobs[i]) EXPECT_NEAR(*whole->logprobs[i], *chunked->logprobs[i], 1e-5);
  }
}

std::vector<GenerationRequest> GreedyRequests(const nlohmann::json& expected) {
  std::vector<GenerationRequest> requests;
  for (const auto& item : expected["greedy"]) {
    GenerationRequest request;
    request.prompt = item["prompt"].get<std::vector<int32_t>>();
    request.max_new_tokens = item["max_new_tokens"];
    request.stop_at_eos = false;  // the reference generates exactly max_new_tokens
    request.return_logprobs = true;
    requests.push_back(std::move(request));
  }
  return requests;
}

TEST_P(ReferenceFixtureTest, GreedyMatchesReferenceAloneAndBatched) {
  const std::vector<GenerationRequest> requests = GreedyRequests(expected_);
  ASSERT_FALSE(requests.empty());
  auto engine = Engine::Create(*model_, {});
  ASSERT_TRUE(engine.ok()) << engine.status();
  const std::vector<testing::Generated> batched = GenerateAll(**engine, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::vector<int32_t> want = expected_["greedy"][i]["tokens"];
    const std::vector<testing::Generated> alone = GenerateAll(**engine, {requests[i]});
    ASSERT_TRUE(alone[0].status.ok()) << alone[0].status;
    ASSERT_TRUE(batched[i].status.ok()) << batched[i].status;
    EXPECT_EQ(alone[0].tokens, want) << "greedy case " << i << " alone";
    EXPECT_EQ(batched[i].tokens, want) << "greedy case " << i << " in a batch";
    EXPECT_EQ(batched[i].reason, FinishReason::kLength);
    ASSERT_EQ(alone[0].logprobs.size(), want.size());
    ASSERT_EQ(batched[i].logprobs.size(), want.size());
    for (size_t t = 0; t < want.size(); ++t) {
      EXPECT_NEAR(alone[0].logprobs[t], batched[i].logprobs[t], 1e-5);
    }
  }
}

// Generated logprobs equal the teacher-forced scores of the same tokens when
// the blocks line up (whole blocks of prompt and of generated tokens).
TEST_P(ReferenceFixtureTest, GenerationLogprobsAgreeWithScoring) {
  const int block_length = model_->is_block() ? model_->config().block_length : 1;
  for (GenerationRequest request : GreedyRequests(expected_)) {
    if (request.prompt.size() % block_length != 0) continue;
    auto engine = Engine::Create(*model_, {});
    ASSERT_TRUE(engine.ok());
    const auto out = GenerateAll(**engine, {request});
    // Whole blocks only, so that scoring pads the sequence as generation did.
    const size_t generated = out[0].tokens.size() / block_length * block_length;
    std::vector<int32_t> sequence = request.prompt;
    sequence.insert(sequence.end(), out[0].tokens.begin(), out[0].tokens.begin() + generated);
    auto scores = ScoreTokens(*model_, sequence);
    ASSERT_TRUE(scores.ok());
    for (size_t t = 0; t < generated; ++t) {
      const auto& score = scores->logprobs[request.prompt.size() + t];
      if (score.has_value()) EXPECT_NEAR(out[0].logprobs[t], *score, 1e-4) << "token " << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceFixtureTest, ::testing::ValuesIn(FixtureNames()));

}  // namespace
}  // namespace blockserve
