// Runs `blockserve init-model` and loads what it wrote back through
// SafetensorsFile + InferModelConfig.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shared/model/checkpoint_layout.h"
#include "shared/model/model_config.h"
#include "shared/model/presets.h"
#include "shared/tensor/dtype.h"
#include "shared/weights/safetensors.h"

namespace blockserve {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class InitModelCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("bs_init_model_test_", getpid(), "_", info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  RunResult Run(const std::vector<std::string>& args) {
    const std::filesystem::path out = dir_ / "stdout.txt",
                                err = dir_ / "stderr.txt";
    std::string command = absl::StrCat("'", BLOCKSERVE_BIN, "' init-model");
    for (const std::string& arg : args) {
      absl::StrAppend(&command, " '", arg, "'");
    }
    absl::StrAppend(&command, " >'", out.string(), "' 2>'", err.string(), "'");
    const int status = std::system(command.c_str());
    RunResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = ReadAll(out);
    result.err = ReadAll(err);
    return result;
  }

  // Writes a model and expects success.
  std::filesystem::path Init(const std::string& preset, const std::string& name,
                             std::vector<std::string> extra = {}) {
    const std::filesystem::path out = dir_ / name;
    std::vector<std::string> args = {"--preset", preset, "--out", out.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult result = Run(args);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return out;
  }

  std::filesystem::path dir_;
};

std::unique_ptr<SafetensorsFile> OpenModel(const std::filesystem::path& dir) {
  auto file = SafetensorsFile::Open((dir / "model.safetensors").string(),
                                    CheckpointOpenOptions());
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? std::move(*file) : nullptr;
}

std::vector<float> Values(const SafetensorsTensor& tensor) {
  std::vector<float> values(tensor.numel());
  ConvertToF32(tensor.dtype, tensor.data, values.data(), values.size());
  return values;
}

void MeanAndStd(const std::vector<float>& v, double& mean, double& std) {
  double sum = 0, sum_sq = 0;
  for (float x : v) sum += x;
  mean = sum / v.size();
  for (float x : v) sum_sq += (x - mean) * (x - mean);
  std = std::sqrt(sum_sq / v.size());
}

TEST_F(InitModelCommandTest, HelpListsPresets) {
  const RunResult result = Run({"--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const std::string& name : PresetNames()) {
    EXPECT_THAT(result.out, HasSubstr(name));
  }
  EXPECT_THAT(result.out, HasSubstr("--seed"));
  EXPECT_THAT(result.out, HasSubstr("--dtype"));
}

TEST_F(InitModelCommandTest, TinyPresetsLoadBackAsThePreset) {
  for (const char* preset :
       {"block_tiny", "block_tiny_mixed", "block_tiny_b2", "vanilla_tiny"}) {
    SCOPED_TRACE(preset);
    const std::filesystem::path dir = Init(preset, preset, {"--seed", "5"});
    const ModelConfig expected = *PresetConfig(preset);
    std::unique_ptr<SafetensorsFile> file = OpenModel(dir);
    ASSERT_NE(file, nullptr);
    const nlohmann::json config =
        nlohmann::json::parse(ReadAll(dir / "config.json"), nullptr, false);
    ASSERT_FALSE(config.is_discarded());
    absl::StatusOr<ModelConfig> inferred = InferModelConfig(*file, config);
    ASSERT_TRUE(inferred.ok()) << inferred.status();
    EXPECT_EQ(*inferred, expected);

    // The shapes alone give the same model (vanilla: but for the positions).
    inferred = InferModelConfig(*file, std::nullopt);
    ASSERT_TRUE(inferred.ok()) << inferred.status();
    ModelConfig bare = expected;
    bare.max_position_embeddings = 0;
    EXPECT_EQ(*inferred, bare);

    // Every tensor of the layout, including the unused block-decoder embed_in.
    const std::vector<CheckpointTensorSpec> layout = CheckpointLayout(expected);
    EXPECT_EQ(file->tensors().size(), layout.size());
    for (const CheckpointTensorSpec& spec : layout) {
      const SafetensorsTensor* tensor = file->Find(spec.name);
      ASSERT_NE(tensor, nullptr) << spec.name;
      EXPECT_EQ(tensor->shape, spec.shape);
      EXPECT_EQ(tensor->dtype, DType::kF32);
    }
  }
}

TEST_F(InitModelCommandTest, ValuesFollowTheDocumentedInitialization) {
  std::unique_ptr<SafetensorsFile> file = OpenModel(Init("block_tiny", "m"));
  ASSERT_NE(file, nullptr);
  double mean, std;
  // Embeddings and matrices: N(0, 0.02).
  for (const char* name :
       {"token_decoder.embed_out.weight", "embedder.embeddings.weight",
        "block_decoder.gpt_neox.layers.1.mlp.dense_h_to_4h.weight"}) {
    MeanAndStd(Values(*file->Find(name)), mean, std);
    EXPECT_NEAR(mean, 0.0, 0.001) << name;
    EXPECT_NEAR(std, 0.02, 0.0008) << name;
  }
  // Biases and LayerNorm shifts: small, not zero. LayerNorm scales: about 1.
  const std::vector<float> bias = Values(
      *file->Find("token_decoder.gpt_neox.layers.0.mlp.dense_h_to_4h.bias"));
  MeanAndStd(bias, mean, std);
  EXPECT_NEAR(std, 0.02, 0.004);
  const std::vector<float> scale = Values(
      *file->Find("block_decoder.gpt_neox.layers.0.input_layernorm.weight"));
  MeanAndStd(scale, mean, std);
  EXPECT_NEAR(mean, 1.0, 0.01);
  EXPECT_NEAR(std, 0.02, 0.006);
  // Different tensors get different values.
  EXPECT_NE(Values(*file->Find("token_decoder.gpt_neox.embed_in.weight")),
            Values(*file->Find("token_decoder.embed_out.weight")));
  EXPECT_NE(Values(*file->Find(
                "block_decoder.gpt_neox.layers.0.input_layernorm.weight")),
            Values(*file->Find(
                "block_decoder.gpt_neox.layers.1.input_layernorm.weight")));
}

TEST_F(InitModelCommandTest, HalfPrecisionModelsAreTheRoundedF32Model) {
  std::unique_ptr<SafetensorsFile> f32 =
      OpenModel(Init("block_tiny_mixed", "f32", {"--seed", "3"}));
  ASSERT_NE(f32, nullptr);
  for (const auto& [flag, dtype] : std::vector<std::pair<std::string, DType>>{
           {"bf16", DType::kBF16}, {"f16", DType::kF16}}) {
    std::unique_ptr<SafetensorsFile> half = OpenModel(
        Init("block_tiny_mixed", flag, {"--seed", "3", "--dtype", flag}));
    ASSERT_NE(half, nullptr);
    ASSERT_EQ(half->tensors().size(), f32->tensors().size());
    for (const SafetensorsTensor& tensor : half->tensors()) {
      ASSERT_EQ(tensor.dtype, dtype) << tensor.name;
      const std::vector<float> full = Values(*f32->Find(tensor.name));
      const auto* bits = static_cast<const uint16_t*>(tensor.data);
      for (size_t i = 0; i < full.size(); ++i) {
        const uint16_t expected =
            dtype == DType::kBF16 ? F32ToBf16(full[i]) : F32ToF16(full[i]);
        ASSERT_EQ(bits[i], expected) << tensor.name << "[" << i << "]";
      }
    }
    absl::StatusOr<ModelConfig> inferred =
        InferModelConfig(*half, std::nullopt);
    ASSERT_TRUE(inferred.ok()) << inferred.status();
    EXPECT_EQ(*inferred, *PresetConfig("block_tiny_mixed"));
  }
}

TEST_F(InitModelCommandTest, SeedDeterminesTheWeights) {
  const std::string a = ReadAll(Init("vanilla_tiny", "a", {"--seed", "42"}) /
                                "model.safetensors");
  const std::string b =
      ReadAll(Init("vanilla_tiny", "b", {"--seed", "42", "--threads", "3"}) /
              "model.safetensors");
  const std::string c =
      ReadAll(Init("vanilla_tiny", "c", {"--seed", "43", "--threads", "1"}) /
              "model.safetensors");
  ASSERT_GT(a.size(), 100000u);
  EXPECT_TRUE(a == b) << "same seed, different thread count: different files";
  EXPECT_EQ(a.size(), c.size());
  EXPECT_FALSE(a == c) << "different seeds gave the same file";
}

TEST_F(InitModelCommandTest, UsageErrors) {
  const std::string out = (dir_ / "m").string();
  RunResult r = Run({"--preset", "block_huge", "--out", out});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown preset 'block_huge'"));
  EXPECT_THAT(r.err, HasSubstr("block_tiny"));
  r = Run({"--preset", "block_tiny"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--out"));
  r = Run({"--preset", "block_tiny", "--out", out, "--dtype", "f8"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--dtype"));
  r = Run({"--preset", "block_tiny", "--out", out, "--seed", "-3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--seed"));
  r = Run({"--preset", "block_tiny", "--out", out, "--threads", "-1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--threads"));
  r = Run({"--preset", "block_tiny", "--out", out, "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--bogus"));
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(InitModelCommandTest, RefusesToOverwriteWithoutForce) {
  const std::filesystem::path dir = Init("block_tiny", "m", {"--seed", "1"});
  const std::string before = ReadAll(dir / "model.safetensors");
  RunResult r =
      Run({"--preset", "block_tiny", "--out", dir.string(), "--seed", "2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("already exists"));
  EXPECT_THAT(r.err, HasSubstr("--force"));
  EXPECT_EQ(ReadAll(dir / "model.safetensors"), before);

  // A stray config.json alone also blocks.
  const std::filesystem::path other = dir_ / "other";
  std::filesystem::create_directories(other);
  std::ofstream(other / "config.json") << "{}";
  r = Run({"--preset", "block_tiny", "--out", other.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("config.json already exists"));

  r = Run({"--preset", "block_tiny", "--out", dir.string(), "--seed", "2",
           "--force"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(ReadAll(dir / "model.safetensors"), before);
  EXPECT_THAT(r.out, HasSubstr("block_tiny"));
  // No temporary files are left behind.
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_THAT(entry.path().filename().string(),
                ::testing::AnyOf("model.safetensors", "config.json"));
  }
}

TEST_F(InitModelCommandTest, OutputDirectoryThatIsAFile) {
  const std::filesystem::path file = dir_ / "file";
  std::ofstream(file) << "x";
  const RunResult r =
      Run({"--preset", "block_tiny", "--out", (file / "sub").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot create"));
}

}  // namespace
}  // namespace blockserve
