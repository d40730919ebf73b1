// The service processes' life: SIGTERM drains in-flight requests and exits
// 0, overload gets RESOURCE_EXHAUSTED, two context replicas with three
// workers, a worker killed mid-run, the text path with a tokenizer and stop
// sequences, and `blockserve up` / `blockserve generate` end to end.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shared/engine/engine.h"
#include "shared/tokenizer/streaming_detokenizer.h"
#include "shared/tokenizer/tokenizer.h"
#include "tests/integration/stack_util.h"
#include "tests/shared/engine/fixture_util.h"

namespace blockserve::testing {
namespace {

using ::testing::HasSubstr;

const char kModel[] = "block_l4_r2";

std::vector<Generated> InProcess(const std::string& model_dir,
                                 const std::vector<GenerationRequest>& requests) {
  auto backend = *CreateBackend({.device = "cpu", .threads = 1});
  auto model = *Model::Load(model_dir, *backend);
  auto engine = *Engine::Create(*model, {});
  return GenerateAll(*engine, requests);
}

GenerationRequest Greedy(std::vector<int32_t> prompt, int max_new_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_new_tokens = max_new_tokens;
  r.stop_at_eos = false;
  return r;
}

v1::GenerateRequest ToProto(const GenerationRequest& r) {
  v1::GenerateRequest request = TokenRequest(r.prompt, r.max_new_tokens);
  request.set_ignore_eos(!r.stop_at_eos);
  request.mutable_sampling()->set_temperature(r.sampling.temperature);
  request.mutable_sampling()->set_seed(r.sampling.seed);
  return request;
}

// A streaming call left open, read from a thread.
struct OpenCall {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader;
  GenerateResult result;
  std::thread thread;
  std::atomic<bool> done{false};

  OpenCall(v1::Generation::Stub& stub, const v1::GenerateRequest& request) {
    reader = stub.Generate(&context, request);
  }
  // Reads until the first tokens arrive (the request is running).
  bool WaitForTokens() {
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
      result.tokens.insert(result.tokens.end(), response.token_ids().begin(),
                           response.token_ids().end());
      if (!result.tokens.empty()) return true;
    }
    return false;
  }
  void ReadRestInBackground() {
    thread = std::thread([this] {
      v1::GenerateResponse response;
      while (reader->Read(&response)) {
        result.tokens.insert(result.tokens.end(), response.token_ids().begin(),
                             response.token_ids().end());
        if (response.has_end()) result.end = response.end();
      }
      result.status = reader->Finish();
      done = true;
    });
  }
  ~OpenCall() {
    context.TryCancel();
    if (thread.joinable()) thread.join();
  }
};

TEST(LifecycleTest, SigtermDrainsInFlightRequestsThenExitsZero) {
  auto stack = Stack::Start(TestModelDir(kModel), 1, 1, {"--grace-period=20"},
                            {"--grace-period=20"}, {"--grace-period=20"});
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto client = (*stack)->Client();
  const GenerationRequest request = Greedy({5, 6, 7}, 4000);
  OpenCall call(*client, ToProto(request));
  ASSERT_TRUE(call.WaitForTokens());
  call.ReadRestInBackground();

  (*stack)->gateway->Signal(SIGTERM);
  // Draining: health says NOT_SERVING and new requests are refused...
  EXPECT_TRUE(Eventually([&] { return HealthStatus((*stack)->gateway->address()) != "SERVING"; }));
  const GenerateResult refused = Generate(*client, ToProto(Greedy({1}, 2)), 5);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(call.done) << "the request ended before the drain was tested";
  // ...while the open request runs to its end.
  ASSERT_EQ((*stack)->gateway->WaitExit(30), 0);
  call.thread.join();
  ASSERT_TRUE(call.result.status.ok()) << call.result.status.error_message();
  EXPECT_EQ(call.result.end.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(call.result.tokens, InProcess(TestModelDir(kModel), {request})[0].tokens);

  (*stack)->contexts[0]->Signal(SIGTERM);
  EXPECT_EQ((*stack)->contexts[0]->WaitExit(30), 0);
  (*stack)->workers[0]->Signal(SIGTERM);
  EXPECT_EQ((*stack)->workers[0]->WaitExit(30), 0);
}

TEST(LifecycleTest, OverloadGetsResourceExhaustedBeforeAnyWork) {
  auto stack = Stack::Start(TestModelDir(kModel), 1, 1, {"--max-concurrent=1", "--max-queued=1"});
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto client = (*stack)->Client();
  const v1::GenerateRequest long_request = ToProto(Greedy({1, 2, 3}, 4000));
  OpenCall running(*client, long_request);
  ASSERT_TRUE(running.WaitForTokens());
  OpenCall queued(*client, long_request);
  ASSERT_TRUE(Eventually(
      [&] { return (*stack)->gateway->Metric("blockserve_gateway_queued_requests") == 1; }));
  const GenerateResult refused = Generate(*client, ToProto(Greedy({1}, 2)), 10);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("at capacity"));
  EXPECT_EQ(refused.messages, 0);
  // The context service never saw the refused request.
  EXPECT_EQ((*stack)->contexts[0]->Metric("blockserve_context_active_sessions") +
                (*stack)->contexts[0]->Metric("blockserve_context_waiting_sessions"),
            1);
  // Once the running one goes away, the queued one runs.
  running.context.TryCancel();
  EXPECT_TRUE(queued.WaitForTokens());
}

TEST(LifecycleTest, TwoContextReplicasAndThreeWorkersShareTheLoad) {
  auto stack = Stack::Start(TestModelDir(kModel), 3, 2);
  ASSERT_TRUE(stack.ok()) << stack.status();
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 16; ++i) {
    GenerationRequest r = Greedy({1 + i, 2 + i, 3 + i}, 20 + i);
    if (i % 2) r.sampling = {.temperature = 0.8f, .top_k = 0, .top_p = 1.0f, .seed = 77u + i};
    requests.push_back(r);
  }
  const auto expected = InProcess(TestModelDir(kModel), requests);
  std::vector<GenerateResult> got(requests.size());
  {
    auto client = (*stack)->Client();
    std::vector<std::thread> threads;
    for (size_t i = 0; i < requests.size(); ++i) {
      threads.emplace_back([&, i] { got[i] = Generate(*client, ToProto(requests[i])); });
    }
    for (std::thread& t : threads) t.join();
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << got[i].status.error_message();
    EXPECT_EQ(got[i].tokens, expected[i].tokens) << "request " << i;
  }
  for (const auto& context : (*stack)->contexts) {
    EXPECT_GT(context->Metric("blockserve_context_sessions_total"), 0);
  }
  for (const auto& worker : (*stack)->workers) {
    EXPECT_GT(worker->Metric(R"(blockserve_worker_blocks_total{outcome="ok"})"), 0);
  }
}

TEST(LifecycleTest, AWorkerKilledMidRunIsReplacedWithoutChangingTheOutput) {
  auto stack = Stack::Start(TestModelDir(kModel), 2, 1);
  ASSERT_TRUE(stack.ok()) << stack.status();
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 6; ++i) {
    GenerationRequest r = Greedy({3 + i, 1, 4}, 600);
    r.sampling = {.temperature = 0.7f, .top_k = 0, .top_p = 1.0f, .seed = 900u + i};
    requests.push_back(r);
  }
  const auto expected = InProcess(TestModelDir(kModel), requests);
  auto client = (*stack)->Client();
  std::vector<std::unique_ptr<OpenCall>> calls;
  for (const GenerationRequest& r : requests) {
    calls.push_back(std::make_unique<OpenCall>(*client, ToProto(r)));
  }
  for (auto& call : calls) {
    ASSERT_TRUE(call->WaitForTokens());
    call->ReadRestInBackground();
  }
  (*stack)->workers[0]->Signal(SIGKILL);
  for (size_t i = 0; i < calls.size(); ++i) {
    calls[i]->thread.join();
    ASSERT_TRUE(calls[i]->result.status.ok()) << calls[i]->result.status.error_message();
    EXPECT_EQ(calls[i]->result.tokens, expected[i].tokens) << "request " << i;
  }
}

// A model whose vocabulary matches the test tokenizer (block_tiny, V = 512),
// written by `blockserve init-model` into a temporary directory.
class TextPathTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           ("blockserve-text-" + std::to_string(getpid())));
    std::filesystem::remove_all(*dir_);
    ChildGuard init({"init-model", "--preset=block_tiny", "--out=" + *dir_});
    ASSERT_EQ(init.WaitExit(120), 0) << "init-model failed";
    std::filesystem::copy_file(
        std::string(BLOCKSERVE_TEST_DATA_DIR) + "/services/tiny_bpe512/tokenizer.json",
        *dir_ + "/tokenizer.json");
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string* dir_;
};

std::string* TextPathTest::dir_ = nullptr;

TEST_F(TextPathTest, TextPromptsStreamedTextAndStopSequencesAcrossBlocks) {
  auto stack = Stack::Start(*dir_, 1, 1);
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto tokenizer = *Tokenizer::FromFile(*dir_ + "/tokenizer.json");
  const std::string prompt = "The quick brown fox";
  const std::vector<int32_t> prompt_ids =
      *tokenizer->Encode(prompt, {.add_special_tokens = false, .parse_special_tokens = false});
  GenerationRequest reference = Greedy(prompt_ids, 24);
  const Generated expected = InProcess(*dir_, {reference})[0];
  const std::string expected_text = *tokenizer->Decode(expected.tokens, true);

  auto client = (*stack)->Client();
  v1::GenerateRequest request;
  request.set_text(prompt);
  request.set_max_new_tokens(24);
  request.set_ignore_eos(true);
  const GenerateResult plain = Generate(*client, request);
  ASSERT_TRUE(plain.status.ok()) << plain.status.error_message();
  EXPECT_EQ(plain.tokens, expected.tokens);
  EXPECT_EQ(plain.text, expected_text);
  EXPECT_EQ(plain.end.usage().prompt_tokens(), static_cast<int>(prompt_ids.size()));

  // A stop sequence spanning the first two blocks (L_B = 4): the last
  // character of the first block's streamed text and all of the second's.
  // The output must end with the token that completes it.
  StreamingDetokenizer detokenizer(*tokenizer, /*skip_special_tokens=*/true);
  std::string streamed4, streamed8;
  for (int i = 0; i < 8; ++i) {
    const std::string piece = *detokenizer.Push(expected.tokens[i]);
    if (i < 4) streamed4 += piece;
    streamed8 += piece;
  }
  size_t start = streamed4.empty() ? 0 : streamed4.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(streamed8[start]) & 0xC0) == 0x80) --start;
  const std::string stop = streamed8.substr(start);
  ASSERT_FALSE(stop.empty());
  request.add_stop_sequences(stop);
  const GenerateResult stopped = Generate(*client, request);
  ASSERT_TRUE(stopped.status.ok()) << stopped.status.error_message();
  EXPECT_EQ(stopped.end.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(stopped.end.stop_sequence(), stop);
  const size_t at = expected_text.find(stop);
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(stopped.text, expected_text.substr(0, at));
  EXPECT_LE(stopped.tokens.size(), 8u);
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>(expected.tokens.begin(),
                                                 expected.tokens.begin() + stopped.tokens.size()));

  // Tokenize / Detokenize on the gateway.
  grpc::ClientContext tokenize_context;
  v1::TokenizeRequest tokenize;
  tokenize.set_text(prompt);
  v1::TokenizeResponse tokens;
  ASSERT_TRUE(client->Tokenize(&tokenize_context, tokenize, &tokens).ok());
  EXPECT_EQ(std::vector<int32_t>(tokens.token_ids().begin(), tokens.token_ids().end()), prompt_ids);
  grpc::ClientContext detokenize_context;
  v1::DetokenizeRequest detokenize;
  detokenize.mutable_token_ids()->Assign(prompt_ids.begin(), prompt_ids.end());
  v1::DetokenizeResponse text;
  ASSERT_TRUE(client->Detokenize(&detokenize_context, detokenize, &text).ok());
  EXPECT_EQ(text.text(), prompt);
}

TEST(UpCommandTest, StartsTheStackServesGenerateAndStopsEverythingOnSigterm) {
  const std::string port_file = std::filesystem::temp_directory_path() /
                                ("blockserve-up-" + std::to_string(getpid()) + ".json");
  ChildGuard up({"up", "--model=" + TestModelDir(kModel), "--workers=2", "--grace-period=5",
                 "--port-file=" + port_file});
  nlohmann::json summary;
  ASSERT_TRUE(Eventually(
      [&] {
        std::ifstream in(port_file);
        if (!in) return false;
        summary = nlohmann::json::parse(in, nullptr, false);
        return summary.is_object();
      },
      60))
      << "blockserve up did not come up";
  const std::string gateway = summary["gateway"];
  ASSERT_EQ(summary["services"].size(), 4u);
  for (const auto& service : summary["services"]) {
    EXPECT_THAT(service["metrics_url"].get<std::string>(), ::testing::StartsWith("http://"));
    EXPECT_THAT(service["metrics_url"].get<std::string>(), ::testing::EndsWith("/metrics"));
  }

  // `blockserve generate --json` against it.
  const std::string out_file = port_file + ".out";
  ChildGuard generate({"generate", "--gateway=" + gateway, "--tokens=4 5 6 7 8",
                       "--max-new-tokens=9", "--ignore-eos", "--json"},
                      out_file);
  ASSERT_EQ(generate.WaitExit(30), 0);
  std::ifstream out(out_file);
  nlohmann::json result = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(result.is_object());
  EXPECT_EQ(result["tokens"].get<std::vector<int32_t>>(),
            InProcess(TestModelDir(kModel), {Greedy({4, 5, 6, 7, 8}, 9)})[0].tokens);
  EXPECT_EQ(result["finish_reason"], "length");
  EXPECT_EQ(result["usage"]["generated_tokens"], 9);
  std::filesystem::remove(out_file);

  std::vector<pid_t> children;
  for (const auto& service : summary["services"]) children.push_back(service["pid"]);
  up.Signal(SIGTERM);
  ASSERT_EQ(up.WaitExit(60), 0);
  for (pid_t pid : children) {
    EXPECT_NE(kill(pid, 0), 0) << "child " << pid << " outlived blockserve up";
  }
}

TEST(UpCommandTest, AChildThatCannotStartStopsTheRestAndFails) {
  const std::string empty =
      std::filesystem::temp_directory_path() / ("blockserve-empty-" + std::to_string(getpid()));
  std::filesystem::create_directories(empty);
  ChildGuard up({"up", "--model=" + empty, "--workers=2"});
  const std::optional<int> code = up.WaitExit(60);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1);
  std::filesystem::remove_all(empty);
}

}  // namespace
}  // namespace blockserve::testing
