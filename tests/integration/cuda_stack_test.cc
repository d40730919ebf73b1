// The service pipeline with the CUDA backend (`--device cuda` on the context
// service and both token workers): greedy output through the gateway equals
// the in-process CPU engine's, for concurrent requests of different lengths.
// Labelled `gpu`; skipped, with the reason, where no CUDA device exists
// (or the build has no CUDA backend).
#include <thread>

#include "gtest/gtest.h"
#include "shared/engine/engine.h"
#include "tests/integration/stack_util.h"
#include "tests/shared/engine/fixture_util.h"

namespace blockserve::testing {
namespace {

const char kModel[] = "block_l4_r2";

TEST(CudaStackTest, GreedyOutputThroughTheStackMatchesTheCpuEngine) {
  absl::StatusOr<std::unique_ptr<Backend>> cuda = CreateBackend({.device = "cuda"});
  if (!cuda.ok()) GTEST_SKIP() << "no CUDA device here: " << cuda.status();
  cuda->reset();  // the services open their own

  std::vector<GenerationRequest> requests;
  std::vector<v1::GenerateRequest> protos;
  for (int i = 0; i < 12; ++i) {
    GenerationRequest request;
    for (int t = 0; t < 1 + (i * 7) % 29; ++t)
      request.prompt.push_back(1 + (i * 31 + t * 17) % 120);
    request.max_new_tokens = 3 + (i * 5) % 23;
    request.stop_at_eos = false;
    v1::GenerateRequest proto = TokenRequest(request.prompt, request.max_new_tokens);
    proto.set_ignore_eos(true);
    requests.push_back(request);
    protos.push_back(proto);
  }
  auto cpu = *CreateBackend({.device = "cpu", .threads = 1});
  auto model = *Model::Load(TestModelDir(kModel), *cpu);
  auto engine = *Engine::Create(*model, {});
  const std::vector<Generated> expected = GenerateAll(*engine, requests);

  auto stack = Stack::Start(TestModelDir(kModel), /*workers=*/2, /*contexts=*/1, {},
                            {"--device=cuda"}, {"--device=cuda"});
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto client = (*stack)->Client();
  std::vector<GenerateResult> got(protos.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < protos.size(); ++i) {
    threads.emplace_back([&, i] { got[i] = Generate(*client, protos[i]); });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < protos.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << i << ": " << got[i].status.error_message();
    EXPECT_EQ(got[i].tokens, expected[i].tokens) << "request " << i;
  }
}

}  // namespace
}  // namespace blockserve::testing
