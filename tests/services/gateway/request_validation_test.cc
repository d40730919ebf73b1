// Validation of public Generate requests: precise INVALID_ARGUMENT messages
// before admission, tokenization and defaults after.
#include "services/gateway/request_validation.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blockserve::services {
namespace {

using ::testing::HasSubstr;

v1::ModelInfo Model() {
  v1::ModelInfo model;
  model.set_vocab_size(128);
  model.set_block_length(4);
  model.set_max_sequence_length(64);
  return model;
}

v1::GenerateRequest Tokens(std::vector<int32_t> ids) {
  v1::GenerateRequest request;
  request.mutable_token_ids()->mutable_ids()->Assign(ids.begin(), ids.end());
  return request;
}

absl::Status Check(const v1::GenerateRequest& request, bool tokenizer = true) {
  return CheckGenerateRequest(request, Model(), tokenizer, GatewayLimits{});
}

TEST(RequestValidationTest, AcceptsAPlainTokenRequest) {
  EXPECT_TRUE(Check(Tokens({1, 2, 3})).ok());
}

TEST(RequestValidationTest, NamesTheOffendingField) {
  struct Case {
    v1::GenerateRequest request;
    std::string message;
  };
  std::vector<Case> cases;
  cases.push_back({v1::GenerateRequest(), "prompt is missing"});
  cases.push_back({Tokens({}), "token_ids is empty"});
  cases.push_back({Tokens({1, 200}), "token_ids[1] = 200 is outside the vocabulary [0, 128)"});
  {
    v1::GenerateRequest r = Tokens({1});
    r.set_max_new_tokens(0);
    cases.push_back({r, "max_new_tokens must be between 1 and 4096, got 0"});
  }
  {
    v1::GenerateRequest r = Tokens({1});
    r.mutable_sampling()->set_temperature(-0.5f);
    cases.push_back({r, "sampling.temperature must be finite and >= 0, got -0.5"});
  }
  {
    v1::GenerateRequest r = Tokens({1});
    r.mutable_sampling()->set_temperature(std::numeric_limits<float>::quiet_NaN());
    cases.push_back({r, "sampling.temperature must be finite"});
  }
  {
    v1::GenerateRequest r = Tokens({1});
    r.mutable_sampling()->set_top_k(-1);
    cases.push_back({r, "sampling.top_k must be >= 0, got -1"});
  }
  {
    v1::GenerateRequest r = Tokens({1});
    r.mutable_sampling()->set_top_p(1.5f);
    cases.push_back({r, "sampling.top_p must be in (0, 1], got 1.5"});
  }
  {
    v1::GenerateRequest r = Tokens({1});
    r.add_stop_sequences("ok");
    r.add_stop_sequences("");
    cases.push_back({r, "stop_sequences[1] is empty"});
  }
  {
    v1::GenerateRequest r;
    r.set_text("");
    cases.push_back({r, "prompt text is empty"});
  }
  for (const Case& c : cases) {
    const absl::Status status = Check(c.request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(status.message(), HasSubstr(c.message));
  }
}

TEST(RequestValidationTest, TextAndStopSequencesNeedATokenizer) {
  v1::GenerateRequest text;
  text.set_text("hello");
  EXPECT_THAT(Check(text, /*tokenizer=*/false).message(), HasSubstr("no tokenizer"));
  v1::GenerateRequest stops = Tokens({1});
  stops.add_stop_sequences("x");
  EXPECT_THAT(Check(stops, false).message(), HasSubstr("stop_sequences need a tokenizer"));
}

TEST(RequestValidationTest, PrepareResolvesDefaultsAndTheSeed) {
  v1::GenerateRequest request = Tokens({5, 6});
  request.mutable_sampling()->set_temperature(0.7f);
  GatewayLimits limits;
  limits.default_max_new_tokens = 8;
  auto prepared = PrepareGenerateRequest(request, Model(), nullptr, limits, 1234);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(prepared->prompt, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(prepared->max_new_tokens, 8);
  EXPECT_EQ(prepared->sampling.seed, 1234u);
  EXPECT_FLOAT_EQ(prepared->sampling.top_p, 1.0f);
  EXPECT_TRUE(prepared->stop_at_eos);

  request.mutable_sampling()->set_seed(7);
  request.set_ignore_eos(true);
  request.set_max_new_tokens(10);
  prepared = PrepareGenerateRequest(request, Model(), nullptr, GatewayLimits{}, 1234);
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(prepared->sampling.seed, 7u);
  EXPECT_FALSE(prepared->stop_at_eos);
  EXPECT_EQ(prepared->max_new_tokens, 10);
}

TEST(RequestValidationTest, PrepareChecksTheModelLength) {
  v1::GenerateRequest request = Tokens(std::vector<int32_t>(60, 3));
  request.set_max_new_tokens(10);
  auto prepared = PrepareGenerateRequest(request, Model(), nullptr, GatewayLimits{}, 1);
  EXPECT_EQ(prepared.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(prepared.status().message(), HasSubstr("maximum sequence length of 64"));
}

}  // namespace
}  // namespace blockserve::services
