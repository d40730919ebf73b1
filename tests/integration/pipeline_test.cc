// The service pipeline as real processes on 127.0.0.1 (gateway, one context
// service, two token workers; fixture model block_l4_r2, token ids):
// output identical to the in-process engine for greedy and seeded sampling
// over many concurrent requests of different lengths, load spread over the
// workers, seeds chosen and reported, bad requests, cancellation and
// deadlines freeing sessions, health, reflection, and the documented
// metrics.
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/engine/engine.h"
#include "tests/integration/stack_util.h"
#include "tests/shared/engine/fixture_util.h"

namespace blockserve::testing {
namespace {

using ::testing::HasSubstr;

const char kModel[] = "block_l4_r2";

struct Case {
  GenerationRequest engine;
  v1::GenerateRequest proto;
};

// Requests of assorted prompt lengths, output lengths and sampling
// settings; every third greedy, the rest seeded; some stop at EOS.
std::vector<Case> MixedCases(int count) {
  std::vector<Case> cases;
  for (int i = 0; i < count; ++i) {
    Case c;
    for (int t = 0; t < 1 + (i * 7) % 29; ++t)
      c.engine.prompt.push_back(1 + (i * 31 + t * 17) % 120);
    c.engine.max_new_tokens = 2 + (i * 5) % 23;
    c.engine.stop_at_eos = i % 5 == 4;
    c.engine.return_logprobs = i % 2 == 0;
    if (i % 3 != 0) {
      c.engine.sampling = {.temperature = 0.9f,
                           .top_k = i % 2 ? 20 : 0,
                           .top_p = i % 4 == 1 ? 0.8f : 1.0f,
                           .seed = 5000u + i};
    }
    c.proto = TokenRequest(c.engine.prompt, c.engine.max_new_tokens);
    c.proto.mutable_sampling()->set_temperature(c.engine.sampling.temperature);
    c.proto.mutable_sampling()->set_top_k(c.engine.sampling.top_k);
    if (c.engine.sampling.top_p != 1.0f)
      c.proto.mutable_sampling()->set_top_p(c.engine.sampling.top_p);
    c.proto.mutable_sampling()->set_seed(c.engine.sampling.seed);
    c.proto.set_ignore_eos(!c.engine.stop_at_eos);
    c.proto.set_logprobs(c.engine.return_logprobs);
    cases.push_back(std::move(c));
  }
  return cases;
}

std::vector<Generated> InProcess(const std::vector<Case>& cases) {
  auto backend = *CreateBackend({.device = "cpu", .threads = 1});
  auto model = *Model::Load(TestModelDir(kModel), *backend);
  auto engine = *Engine::Create(*model, {});
  std::vector<GenerationRequest> requests;
  for (const Case& c : cases) requests.push_back(c.engine);
  return GenerateAll(*engine, requests);
}

std::vector<GenerateResult> Concurrently(const Stack& stack, const std::vector<Case>& cases) {
  std::vector<GenerateResult> results(cases.size());
  std::vector<std::thread> threads;
  auto client = stack.Client();
  for (size_t i = 0; i < cases.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = Generate(*client, cases[i].proto); });
  }
  for (std::thread& t : threads) t.join();
  return results;
}

class PipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto stack = Stack::Start(TestModelDir(kModel), /*workers=*/2, /*contexts=*/1,
                              {"--max-concurrent=64", "--max-queued=64"});
    ASSERT_TRUE(stack.ok()) << stack.status();
    stack_ = stack->release();
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(stack_, nullptr); }

  // Waits until the context service holds no session and no block.
  static bool ContextIdle() {
    return Eventually([] {
      const ServiceProcess& context = *stack_->contexts[0];
      return context.Metric("blockserve_context_active_sessions") == 0 &&
             context.Metric("blockserve_context_waiting_sessions") == 0 &&
             context.Metric("blockserve_context_kv_cache_used_bytes") == 0 &&
             context.Metric("blockserve_context_in_flight_blocks") == 0 &&
             context.Metric("blockserve_context_queued_blocks") == 0;
    });
  }

  static Stack* stack_;
};

Stack* PipelineTest::stack_ = nullptr;

TEST_F(PipelineTest, OutputMatchesTheInProcessEngineAndSpreadsOverTheWorkers) {
  const std::vector<Case> cases = MixedCases(24);
  const std::vector<Generated> expected = InProcess(cases);
  std::vector<double> before;
  for (const auto& worker : stack_->workers) {
    const double v = worker->Metric(R"(blockserve_worker_blocks_total{outcome="ok"})");
    before.push_back(std::isnan(v) ? 0 : v);
  }
  const std::vector<GenerateResult> got = Concurrently(*stack_, cases);
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << i << ": " << got[i].status.error_message();
    ASSERT_TRUE(expected[i].status.ok());
    EXPECT_EQ(got[i].tokens, expected[i].tokens) << "request " << i;
    EXPECT_EQ(got[i].end.finish_reason(), expected[i].reason == FinishReason::kEos
                                              ? v1::FINISH_REASON_EOS
                                              : v1::FINISH_REASON_LENGTH)
        << "request " << i;
    EXPECT_EQ(got[i].end.usage().generated_tokens(), static_cast<int>(got[i].tokens.size()));
    EXPECT_EQ(got[i].end.usage().prompt_tokens(), static_cast<int>(cases[i].engine.prompt.size()));
    EXPECT_EQ(got[i].end.seed(), cases[i].engine.sampling.seed);
    EXPECT_TRUE(got[i].has_start);
    if (cases[i].engine.return_logprobs) {
      ASSERT_EQ(got[i].logprobs.size(), expected[i].logprobs.size());
      for (size_t t = 0; t < got[i].logprobs.size(); ++t) {
        EXPECT_NEAR(got[i].logprobs[t], expected[i].logprobs[t], 1e-5);
      }
    } else {
      EXPECT_TRUE(got[i].logprobs.empty());
    }
  }
  for (size_t w = 0; w < stack_->workers.size(); ++w) {
    const double after =
        stack_->workers[w]->Metric(R"(blockserve_worker_blocks_total{outcome="ok"})");
    EXPECT_GT(after - before[w], 0) << "worker " << w << " decoded nothing";
  }
  EXPECT_TRUE(ContextIdle());
}

TEST_F(PipelineTest, ASeedIsChosenWhenAbsentAndReproducesTheOutput) {
  auto client = stack_->Client();
  v1::GenerateRequest request = TokenRequest({3, 1, 4, 1, 5}, 12);
  request.mutable_sampling()->set_temperature(1.0f);
  request.set_ignore_eos(true);
  const GenerateResult first = Generate(*client, request);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_TRUE(first.has_start);
  EXPECT_EQ(first.start_seed, first.end.seed());
  request.mutable_sampling()->set_seed(first.end.seed());
  const GenerateResult again = Generate(*client, request);
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.tokens, first.tokens);
}

TEST_F(PipelineTest, BadRequestsGetInvalidArgumentWithAPreciseMessage) {
  auto client = stack_->Client();
  struct Bad {
    v1::GenerateRequest request;
    std::string message;
  };
  std::vector<Bad> cases;
  cases.push_back({v1::GenerateRequest(), "prompt is missing"});
  cases.push_back({TokenRequest({1, 999}, 4), "token_ids[1] = 999 is outside the vocabulary"});
  cases.push_back({TokenRequest({1}, 0), "max_new_tokens must be between 1 and"});
  {
    v1::GenerateRequest r = TokenRequest({1}, 4);
    r.mutable_sampling()->set_top_p(0.0f);
    cases.push_back({r, "sampling.top_p must be in (0, 1]"});
  }
  {
    v1::GenerateRequest r = TokenRequest({1}, 4);
    r.mutable_sampling()->set_temperature(-1.0f);
    cases.push_back({r, "sampling.temperature must be finite and >= 0"});
  }
  {
    v1::GenerateRequest r;
    r.set_text("hello");  // the fixture model has no tokenizer
    cases.push_back({r, "no tokenizer"});
  }
  for (const Bad& bad : cases) {
    const GenerateResult result = Generate(*client, bad.request);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.message;
    EXPECT_THAT(result.status.error_message(), HasSubstr(bad.message));
    EXPECT_EQ(result.messages, 0);
  }
  EXPECT_GE(
      stack_->gateway->Metric(
          R"(blockserve_gateway_requests_total{code="INVALID_ARGUMENT",method="Generate",outcome="rejected"})"),
      static_cast<double>(cases.size()));
}

TEST_F(PipelineTest, CancelledRequestsFreeTheirSessionsAtOnce) {
  auto client = stack_->Client();
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>>> readers;
  for (int i = 0; i < 4; ++i) {
    v1::GenerateRequest request = TokenRequest({1, 2, 3, 4, 5, 6, 7}, 4000);
    request.set_ignore_eos(true);
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    readers.push_back(client->Generate(contexts.back().get(), request));
    // Wait for tokens: the session is running.
    v1::GenerateResponse response;
    bool got_tokens = false;
    while (!got_tokens && readers.back()->Read(&response))
      got_tokens = response.token_ids_size() > 0;
    ASSERT_TRUE(got_tokens);
  }
  EXPECT_GE(stack_->contexts[0]->Metric("blockserve_context_active_sessions"), 1);
  EXPECT_GT(stack_->contexts[0]->Metric("blockserve_context_kv_cache_used_bytes"), 0);
  for (auto& context : contexts) context->TryCancel();
  for (auto& reader : readers) {
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_TRUE(ContextIdle());
  EXPECT_TRUE(Eventually([] {
    return stack_->gateway->Metric("blockserve_gateway_active_requests") == 0 &&
           stack_->workers[0]->Metric("blockserve_worker_active_blocks") == 0 &&
           stack_->workers[1]->Metric("blockserve_worker_active_blocks") == 0;
  }));
  EXPECT_GE(
      stack_->contexts[0]->Metric(R"(blockserve_context_sessions_total{outcome="cancelled"})"), 4);
}

TEST_F(PipelineTest, APassedDeadlineEndsTheRequestAndFreesItsSession) {
  auto client = stack_->Client();
  v1::GenerateRequest request = TokenRequest({9, 8, 7}, 4000);
  request.set_ignore_eos(true);
  const GenerateResult result = Generate(*client, request, /*timeout_s=*/0.3);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(ContextIdle());
}

TEST_F(PipelineTest, EveryServerIsHealthyAndOffersReflection) {
  std::vector<std::pair<const ServiceProcess*, std::string>> servers = {
      {stack_->gateway.get(), "blockserve.v1.Generation"},
      {stack_->contexts[0].get(), "blockserve.v1.ContextService"},
      {stack_->workers[0].get(), "blockserve.v1.TokenWorker"}};
  for (const auto& [server, service] : servers) {
    EXPECT_EQ(HealthStatus(server->address()), "SERVING") << service;
    auto listed = ReflectionListServicesRaw(server->address());
    ASSERT_TRUE(listed.ok()) << listed.status();
    EXPECT_THAT(*listed, HasSubstr(service));
    EXPECT_THAT(*listed, HasSubstr("grpc.health.v1.Health"));
  }
}

TEST_F(PipelineTest, GetModelInfoDescribesTheModel) {
  auto client = stack_->Client();
  grpc::ClientContext context;
  v1::GetModelInfoResponse info;
  ASSERT_TRUE(client->GetModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(info.model().name(), kModel);
  EXPECT_EQ(info.model().vocab_size(), 128);
  EXPECT_EQ(info.model().block_length(), 4);
  EXPECT_FALSE(info.has_tokenizer());
  EXPECT_EQ(info.context_replicas(), 1);
}

// Every metric docs/metrics.md lists is exported by the service it names.
TEST_F(PipelineTest, EveryDocumentedMetricIsExported) {
  // Labelled families appear once they have a series: finish one request.
  auto client = stack_->Client();
  ASSERT_TRUE(Generate(*client, TokenRequest({1, 2}, 3)).status.ok());
  ASSERT_TRUE(ContextIdle());
  std::ifstream doc(std::string(BLOCKSERVE_TEST_DATA_DIR) + "/../../docs/metrics.md");
  ASSERT_TRUE(doc) << "docs/metrics.md is missing";
  const std::regex row(R"(^\| `(blockserve_[a-z_]+)` \| (\w+) \|)");
  std::string line;
  int checked = 0;
  const std::string gateway = stack_->gateway->ScrapeMetrics();
  const std::string context = stack_->contexts[0]->ScrapeMetrics();
  const std::string worker = stack_->workers[0]->ScrapeMetrics();
  while (std::getline(doc, line)) {
    std::smatch match;
    if (!std::regex_search(line, match, row)) continue;
    const std::string name = match[1];
    const std::string& exposition = name.rfind("blockserve_gateway_", 0) == 0   ? gateway
                                    : name.rfind("blockserve_context_", 0) == 0 ? context
                                                                                : worker;
    EXPECT_THAT(exposition, HasSubstr("# TYPE " + name + " " + std::string(match[2])))
        << name << " is documented but not exported";
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

}  // namespace
}  // namespace blockserve::testing
