// Whole models on the CUDA backend against the CPU backend (the reference),
// for every golden fixture (block and vanilla models): teacher-forced scores
// and greedy generations with F32 weights, scores with 16-bit weights on the
// GPU, and the blockserve tool (score, sampled run) with --device cuda.
// Labelled gpu; where no CUDA backend can be created every test skips and
// says why.
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shared/engine/scorer.h"
#include "tests/shared/engine/fixture_util.h"
#include "tests/util/subprocess.h"

namespace blockserve {
namespace {

using ::blockserve::testing::FixtureDir;
using ::blockserve::testing::FixtureNames;
using ::blockserve::testing::GenerateAll;
using ::blockserve::testing::LoadExpected;

std::string Join(const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) {
    if (!out.empty()) out += ' ';
    out += std::to_string(id);
  }
  return out;
}

class DeviceParityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Backend>> cuda = CreateBackend({.device = "cuda"});
    if (!cuda.ok()) GTEST_SKIP() << "CUDA backend unavailable: " << cuda.status();
    cuda_ = std::move(*cuda);
    cpu_ = *CreateBackend({.device = "cpu", .threads = 2});
    absl::StatusOr<std::unique_ptr<Model>> cpu_model = Model::Load(FixtureDir(GetParam()), *cpu_);
    ASSERT_TRUE(cpu_model.ok()) << cpu_model.status();
    cpu_model_ = std::move(*cpu_model);
    absl::StatusOr<std::unique_ptr<Model>> cuda_model = Model::Load(FixtureDir(GetParam()), *cuda_);
    ASSERT_TRUE(cuda_model.ok()) << cuda_model.status();
    cuda_model_ = std::move(*cuda_model);
    expected_ = LoadExpected(GetParam());
  }

  // Scores every fixture sequence on both models; returns |cuda - cpu| of
  // each scored token.
  std::vector<double> ScoreDifferences(const Model& cuda_model) {
    std::vector<double> differences;
    for (const auto& item : expected_["score"]) {
      const std::vector<int32_t> tokens = item["tokens"];
      absl::StatusOr<ScoreResult> cpu = ScoreTokens(*cpu_model_, tokens);
      absl::StatusOr<ScoreResult> gpu = ScoreTokens(cuda_model, tokens);
      EXPECT_TRUE(cpu.ok()) << cpu.status();
      EXPECT_TRUE(gpu.ok()) << gpu.status();
      if (!cpu.ok() || !gpu.ok()) return differences;
      EXPECT_EQ(cpu->logprobs.size(), gpu->logprobs.size());
      for (size_t i = 0; i < std::min(cpu->logprobs.size(), gpu->logprobs.size()); ++i) {
        EXPECT_EQ(cpu->logprobs[i].has_value(), gpu->logprobs[i].has_value()) << "token " << i;
        if (cpu->logprobs[i] && gpu->logprobs[i]) {
          differences.push_back(std::abs(*cpu->logprobs[i] - *gpu->logprobs[i]));
        }
      }
    }
    return differences;
  }

  // Declared before the models, which refer to them: destroyed after.
  std::unique_ptr<Backend> cpu_;
  std::unique_ptr<Backend> cuda_;
  std::unique_ptr<Model> cpu_model_;
  std::unique_ptr<Model> cuda_model_;
  nlohmann::json expected_;
};

TEST_P(DeviceParityTest, ScoresMatchCpu) {
  const std::vector<double> differences = ScoreDifferences(*cuda_model_);
  ASSERT_FALSE(differences.empty());
  for (size_t i = 0; i < differences.size(); ++i) {
    EXPECT_LT(differences[i], 2e-4) << "scored token " << i;
  }
}

TEST_P(DeviceParityTest, GreedyGenerationMatchesCpu) {
  std::vector<GenerationRequest> requests;
  for (const auto& item : expected_["greedy"]) {
    GenerationRequest request;
    request.prompt = item["prompt"].get<std::vector<int32_t>>();
    request.max_new_tokens = item["max_new_tokens"];
    request.stop_at_eos = false;
    request.return_logprobs = true;
    requests.push_back(std::move(request));
  }
  ASSERT_FALSE(requests.empty());
  auto cpu_engine = Engine::Create(*cpu_model_, {});
  auto cuda_engine = Engine::Create(*cuda_model_, {});
  ASSERT_TRUE(cpu_engine.ok()) << cpu_engine.status();
  ASSERT_TRUE(cuda_engine.ok()) << cuda_engine.status();
  const auto cpu = GenerateAll(**cpu_engine, requests);
  const auto gpu = GenerateAll(**cuda_engine, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(gpu[i].status.ok()) << gpu[i].status;
    EXPECT_EQ(gpu[i].tokens, cpu[i].tokens) << "greedy case " << i;
    EXPECT_EQ(gpu[i].tokens, expected_["greedy"][i]["tokens"].get<std::vector<int32_t>>())
        << "greedy case " << i << " against the PyTorch reference";
    ASSERT_EQ(gpu[i].logprobs.size(), cpu[i].logprobs.size());
    for (size_t t = 0; t < gpu[i].logprobs.size(); ++t) {
      EXPECT_NEAR(gpu[i].logprobs[t], cpu[i].logprobs[t], 2e-4) << "case " << i << " token " << t;
    }
  }
}

TEST_P(DeviceParityTest, SixteenBitWeightsStayClose) {
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    if (!cuda_->SupportsWeightType(dtype)) continue;
    SCOPED_TRACE(DTypeName(dtype));
    absl::StatusOr<std::unique_ptr<Model>> model =
        Model::Load(FixtureDir(GetParam()), *cuda_, {.weight_dtype = dtype});
    ASSERT_TRUE(model.ok()) << model.status();
    const std::vector<double> differences = ScoreDifferences(**model);
    ASSERT_FALSE(differences.empty());
    double sum = 0;
    for (size_t i = 0; i < differences.size(); ++i) {
      // 16-bit weights and activations move log-probabilities by about
      // 1e-2 nats at most on these small models; a broken kernel by nats.
      EXPECT_LT(differences[i], 0.15) << "scored token " << i;
      sum += differences[i];
    }
    EXPECT_LT(sum / differences.size(), 0.03);
  }
}

TEST_P(DeviceParityTest, ToolScoresWithDeviceCuda) {
  const auto& item = expected_["score"].back();
  auto score = [&](const std::string& device) {
    return testing::RunBlockserve({"score", "--model", FixtureDir(GetParam()), "--tokens",
                                   Join(item["tokens"]), "--json", "--device", device, "--threads",
                                   "1"});
  };
  const testing::ProcessResult cpu = score("cpu");
  const testing::ProcessResult gpu = score("cuda");
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
  const nlohmann::json cpu_out = nlohmann::json::parse(cpu.out);
  const nlohmann::json gpu_out = nlohmann::json::parse(gpu.out);
  ASSERT_EQ(cpu_out["logprobs"].size(), gpu_out["logprobs"].size());
  for (size_t i = 0; i < cpu_out["logprobs"].size(); ++i) {
    ASSERT_EQ(cpu_out["logprobs"][i].is_null(), gpu_out["logprobs"][i].is_null()) << i;
    if (cpu_out["logprobs"][i].is_null()) continue;
    EXPECT_NEAR(gpu_out["logprobs"][i].get<double>(), cpu_out["logprobs"][i].get<double>(), 2e-4)
        << "token " << i;
  }
}

TEST_P(DeviceParityTest, ToolSamplesTheSameTokensWithDeviceCuda) {
  // Sampling (temperature, top-k, top-p) draws from (seed, position) only,
  // so both devices pick the same tokens wherever their logits agree.
  const auto& item = expected_["greedy"].front();
  auto run = [&](const std::string& device) {
    return testing::RunBlockserve({"run",
                                   "--model",
                                   FixtureDir(GetParam()),
                                   "--tokens",
                                   Join(item["prompt"]),
                                   "--max-new-tokens",
                                   "12",
                                   "--temperature",
                                   "0.8",
                                   "--top-k",
                                   "20",
                                   "--top-p",
                                   "0.9",
                                   "--seed",
                                   "7",
                                   "--batch",
                                   "3",
                                   "--ignore-eos",
                                   "--json",
                                   "--device",
                                   device,
                                   "--threads",
                                   "1"});
  };
  const testing::ProcessResult cpu = run("cpu");
  const testing::ProcessResult gpu = run("cuda");
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
  EXPECT_EQ(nlohmann::json::parse(gpu.out)["tokens"], nlohmann::json::parse(cpu.out)["tokens"]);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DeviceParityTest, ::testing::ValuesIn(FixtureNames()));

}  // namespace
}  // namespace blockserve
