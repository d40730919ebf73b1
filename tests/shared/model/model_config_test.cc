// Tests of the checkpoint layout, configuration inference from checkpoints
// written to a temporary directory, config.json handling, validation and the
// presets. Expected sizes come from the spec (sections 2, 4, 5) and the
// Pythia paper's parameter table, spelled out here by hand.
#include "shared/model/model_config.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shared/model/checkpoint_layout.h"
#include "shared/model/presets.h"
#include "shared/weights/safetensors.h"

namespace blockserve {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using json = nlohmann::json;

// A stack spelled out field by field (heads given explicitly).
NeoxStackConfig Stack(int hidden, int layers, int heads) {
  NeoxStackConfig s;
  s.hidden_size = hidden;
  s.num_layers = layers;
  s.num_heads = heads;
  s.head_dim = hidden / heads;
  s.intermediate_size = 4 * hidden;
  s.rotary_dims = s.head_dim / 4;  // rotary_pct 0.25
  return s;
}

ModelConfig BlockConfig(int vocab, NeoxStackConfig block, NeoxStackConfig token, int block_length,
                        int expansion_ratio) {
  ModelConfig c;
  c.kind = ModelKind::kBlock;
  c.vocab_size = vocab;
  c.block_length = block_length;
  c.embedder_dim = block.hidden_size / block_length;
  c.expansion_ratio = expansion_ratio;
  c.block_decoder = block;
  c.token_decoder = token;
  return c;
}

ModelConfig VanillaConfig(int vocab, NeoxStackConfig stack) {
  ModelConfig c;
  c.kind = ModelKind::kVanilla;
  c.vocab_size = vocab;
  c.vanilla = stack;
  return c;
}

// Tensor names and shapes of a checkpoint to write (values are zeros).
class Checkpoint {
 public:
  static Checkpoint FromLayout(const ModelConfig& config) {
    Checkpoint c;
    for (const CheckpointTensorSpec& spec : CheckpointLayout(config)) {
      c.Set(spec.name, spec.shape);
    }
    return c;
  }

  Checkpoint& Set(const std::string& name, std::vector<int64_t> shape, DType dtype = DType::kF32) {
    tensors_[name] = {dtype, std::move(shape)};
    return *this;
  }
  Checkpoint& Remove(const std::string& name) {
    EXPECT_EQ(tensors_.erase(name), 1u) << name;
    return *this;
  }
  Checkpoint& RemovePrefix(const std::string& prefix) {
    for (auto it = tensors_.begin(); it != tensors_.end();) {
      it = it->first.rfind(prefix, 0) == 0 ? tensors_.erase(it) : std::next(it);
    }
    return *this;
  }
  Checkpoint& SetDType(DType dtype) {
    for (auto& [name, tensor] : tensors_) tensor.dtype = dtype;
    return *this;
  }

  // Writes the file; `raw_bool` names get a BOOL dtype (for Pythia buffers).
  void Write(const std::string& path,
             const std::map<std::string, std::vector<int64_t>>& raw_bool = {}) const {
    std::vector<SafetensorsWriteEntry> entries;
    size_t largest = 0;
    for (const auto& [name, tensor] : tensors_) {
      size_t bytes = DTypeSize(tensor.dtype);
      for (int64_t d : tensor.shape) bytes *= d;
      largest = std::max(largest, bytes);
      entries.push_back({name, tensor.dtype, tensor.shape, nullptr});
    }
    std::vector<char> zeros(largest + 1, 0);
    for (auto& entry : entries) entry.data = zeros.data();
    ASSERT_TRUE(WriteSafetensors(path, entries).ok());
    if (raw_bool.empty()) return;
    // Re-write with the BOOL tensors appended by hand (our writer has no BOOL).
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok());
    json header;
    std::string data;
    for (const SafetensorsTensor& t : (*file)->tensors()) {
      header[t.name] = {{"dtype", std::string(DTypeName(t.dtype))},
                        {"shape", t.shape},
                        {"data_offsets", {data.size(), data.size() + t.nbytes}}};
      data.append(static_cast<const char*>(t.data), t.nbytes);
    }
    for (const auto& [name, shape] : raw_bool) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      header[name] = {
          {"dtype", "BOOL"}, {"shape", shape}, {"data_offsets", {data.size(), data.size() + n}}};
      data.append(n, '\1');
    }
    const std::string text = header.dump();
    const uint64_t size = text.size();
    std::FILE* out = std::fopen(path.c_str(), "wb");
    std::fwrite(&size, 8, 1, out);
    std::fwrite(text.data(), 1, text.size(), out);
    std::fwrite(data.data(), 1, data.size(), out);
    std::fclose(out);
  }

 private:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
  };
  std::map<std::string, Entry> tensors_;
};

class ModelConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // Parameterized names ("InfersEverySize/0") hold a '/': one directory.
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("bs_model_config_test_", getpid(), "_",
                        absl::StrReplaceAll(info->name(), {{"/", "_"}}));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "model.safetensors").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<ModelConfig> Infer(
      const Checkpoint& checkpoint, const std::optional<json>& config = std::nullopt,
      const std::map<std::string, std::vector<int64_t>>& raw_bool = {}) {
    checkpoint.Write(path_, raw_bool);
    auto file = SafetensorsFile::Open(path_, CheckpointOpenOptions());
    if (!file.ok()) return file.status();
    return InferModelConfig(**file, config);
  }

  // Expects INVALID_ARGUMENT whose message contains every substring.
  void ExpectError(const Checkpoint& checkpoint, const std::optional<json>& config,
                   const std::vector<std::string>& substrings) {
    absl::StatusOr<ModelConfig> result = Infer(checkpoint, config);
    ASSERT_FALSE(result.ok()) << (config ? config->dump() : "no config.json");
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    for (const std::string& s : substrings) {
      EXPECT_THAT(std::string(result.status().message()), HasSubstr(s))
          << (config ? config->dump() : "no config.json");
    }
  }

  std::filesystem::path dir_;
  std::string path_;
};

const ModelConfig kTinyBlock = BlockConfig(32, Stack(64, 2, 2), Stack(64, 2, 2), 4, 2);
const ModelConfig kTinyVanilla = VanillaConfig(32, Stack(64, 2, 2));

// ---------------------------------------------------------------------------
// Layout.

TEST(CheckpointLayoutTest, BlockLayoutFollowsTheSpec) {
  // V 11, P 8 (L_B 2, embedder 4), H 6, R 3, one layer each, MLP widths 32
  // / 24.
  ModelConfig c = BlockConfig(11, Stack(8, 1, 1), Stack(6, 1, 1), 2, 3);
  c.block_decoder.intermediate_size = 32;
  c.token_decoder.intermediate_size = 24;
  std::map<std::string, std::vector<int64_t>> expected = {
      {"embedder.embeddings.weight", {11, 4}},
      {"block_decoder.gpt_neox.embed_in.weight", {11, 8}},
      {"token_decoder.gpt_neox.embed_in.weight", {11, 6}},
      {"token_decoder.embed_out.weight", {11, 6}},
      {"token_decoder.expansion_layer.weight", {18, 8, 1}},
      {"token_decoder.expansion_layer.bias", {18}},
  };
  for (const auto& [prefix, d, inner] : std::vector<std::tuple<std::string, int64_t, int64_t>>{
           {"block_decoder.gpt_neox", 8, 32}, {"token_decoder.gpt_neox", 6, 24}}) {
    const std::string layer = prefix + ".layers.0.";
    expected[layer + "input_layernorm.weight"] = {d};
    expected[layer + "input_layernorm.bias"] = {d};
    expected[layer + "post_attention_layernorm.weight"] = {d};
    expected[layer + "post_attention_layernorm.bias"] = {d};
    expected[layer + "attention.query_key_value.weight"] = {3 * d, d};
    expected[layer + "attention.query_key_value.bias"] = {3 * d};
    expected[layer + "attention.dense.weight"] = {d, d};
    expected[layer + "attention.dense.bias"] = {d};
    expected[layer + "mlp.dense_h_to_4h.weight"] = {inner, d};
    expected[layer + "mlp.dense_h_to_4h.bias"] = {inner};
    expected[layer + "mlp.dense_4h_to_h.weight"] = {d, inner};
    expected[layer + "mlp.dense_4h_to_h.bias"] = {d};
    expected[prefix + ".final_layer_norm.weight"] = {d};
    expected[prefix + ".final_layer_norm.bias"] = {d};
  }
  std::map<std::string, std::vector<int64_t>> actual;
  for (const CheckpointTensorSpec& spec : CheckpointLayout(c)) {
    EXPECT_TRUE(actual.emplace(spec.name, spec.shape).second) << "duplicate " << spec.name;
    EXPECT_EQ(spec.required, spec.name != "block_decoder.gpt_neox.embed_in.weight") << spec.name;
  }
  EXPECT_EQ(actual, expected);
}

TEST(CheckpointLayoutTest, VanillaLayoutAndRoles) {
  const ModelConfig c = VanillaConfig(50, Stack(16, 2, 1));
  const std::vector<CheckpointTensorSpec> layout = CheckpointLayout(c);
  ASSERT_EQ(layout.size(), 1u + 2 * 12 + 2 + 1);
  std::map<std::string, CheckpointTensorSpec> by_name;
  for (const CheckpointTensorSpec& spec : layout) by_name[spec.name] = spec;
  EXPECT_EQ(by_name.at("gpt_neox.embed_in.weight").shape, (std::vector<int64_t>{50, 16}));
  EXPECT_EQ(by_name.at("embed_out.weight").shape, (std::vector<int64_t>{50, 16}));
  EXPECT_EQ(by_name.at("gpt_neox.layers.1.mlp.dense_4h_to_h.weight").shape,
            (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(by_name.at("gpt_neox.final_layer_norm.bias").shape, (std::vector<int64_t>{16}));
  using Role = CheckpointTensorRole;
  EXPECT_EQ(by_name.at("gpt_neox.embed_in.weight").role, Role::kEmbedding);
  EXPECT_EQ(by_name.at("embed_out.weight").role, Role::kEmbedding);
  EXPECT_EQ(by_name.at("gpt_neox.layers.0.attention.dense.weight").role, Role::kMatrix);
  EXPECT_EQ(by_name.at("gpt_neox.layers.0.attention.dense.bias").role, Role::kBias);
  EXPECT_EQ(by_name.at("gpt_neox.layers.0.input_layernorm.weight").role, Role::kNormWeight);
  EXPECT_EQ(by_name.at("gpt_neox.final_layer_norm.bias").role, Role::kNormBias);
  for (const CheckpointTensorSpec& spec : layout) {
    EXPECT_TRUE(spec.required) << spec.name;
  }
}

TEST(CheckpointLayoutTest, NameHelpers) {
  EXPECT_EQ(StackTensorName("token_decoder.gpt_neox", 3, "mlp.dense_h_to_4h.bias"),
            "token_decoder.gpt_neox.layers.3.mlp.dense_h_to_4h.bias");
  EXPECT_EQ(StackFinalNormName("gpt_neox", "weight"), "gpt_neox.final_layer_norm.weight");
  EXPECT_EQ(ShapeToString({3, 4}), "[3, 4]");
  EXPECT_EQ(ShapeToString({}), "[]");
}

TEST(CheckpointLayoutTest, ShapeMatchesAllowsOnlyDroppedTrailingOnes) {
  const CheckpointTensorSpec spec{"x", {6, 8, 1}, true};
  EXPECT_TRUE(ShapeMatchesLayout(spec, {6, 8, 1}));
  EXPECT_TRUE(ShapeMatchesLayout(spec, {6, 8}));
  EXPECT_FALSE(ShapeMatchesLayout(spec, {6, 8, 2}));
  EXPECT_FALSE(ShapeMatchesLayout(spec, {6}));
  EXPECT_FALSE(ShapeMatchesLayout(spec, {6, 8, 1, 1}));
  EXPECT_FALSE(ShapeMatchesLayout(spec, {8, 6, 1}));
  EXPECT_FALSE(ShapeMatchesLayout({"y", {6, 8}, true}, {6, 8, 1}));
}

TEST(CheckpointLayoutTest, IgnoredBuffers) {
  for (const char* name :
       {"gpt_neox.layers.0.attention.bias", "gpt_neox.layers.12.attention.masked_bias",
        "gpt_neox.layers.3.attention.rotary_emb.inv_freq", "gpt_neox.rotary_emb.inv_freq",
        "block_decoder.gpt_neox.layers.0.attention.bias",
        "token_decoder.gpt_neox.layers.1.attention.masked_bias"}) {
    EXPECT_TRUE(IsIgnoredCheckpointBuffer(name)) << name;
  }
  for (const char* name :
       {"gpt_neox.layers.0.attention.dense.bias",
        "gpt_neox.layers.0.attention.query_key_value.bias", "gpt_neox.layers.x.attention.bias",
        "gpt_neox.layers..attention.bias", "foo.layers.0.attention.bias", "embed_out.weight",
        "gpt_neox.layers.0.mlp.bias", "embedder.rotary_emb.inv_freq",
        "gpt_neox.layers.0.attention.bias.extra"}) {
    EXPECT_FALSE(IsIgnoredCheckpointBuffer(name)) << name;
  }
}

// ---------------------------------------------------------------------------
// Derived sizes.

TEST(ModelConfigRulesTest, DefaultHeadDimFollowsThePaperRule) {
  EXPECT_EQ(DefaultHeadDim(64), 32);
  EXPECT_EQ(DefaultHeadDim(256), 32);
  EXPECT_EQ(DefaultHeadDim(257), 64);
  EXPECT_EQ(DefaultHeadDim(1536), 64);
  EXPECT_EQ(DefaultHeadDim(1537), 128);
  EXPECT_EQ(DefaultHeadDim(2048), 128);
}

TEST(ModelConfigRulesTest, RotaryDimsTruncate) {
  EXPECT_EQ(RotaryDims(32, 0.25), 8);
  EXPECT_EQ(RotaryDims(64, 0.25), 16);
  EXPECT_EQ(RotaryDims(128, 0.25), 32);
  EXPECT_EQ(RotaryDims(32, 0.3), 9);  // 9.6 -> 9
  EXPECT_EQ(RotaryDims(64, 0.1), 6);  // 6.4 -> 6
  EXPECT_EQ(RotaryDims(64, 1.0), 64);
  EXPECT_EQ(RotaryDims(64, 0.0), 0);
}

TEST(ModelConfigRulesTest, MakeNeoxStackConfig) {
  EXPECT_EQ(MakeNeoxStackConfig(96, 2), Stack(96, 2, 3));
  EXPECT_EQ(MakeNeoxStackConfig(160, 1), Stack(160, 1, 5));
  EXPECT_EQ(MakeNeoxStackConfig(768, 6), Stack(768, 6, 12));
  EXPECT_EQ(MakeNeoxStackConfig(2048, 1), Stack(2048, 1, 16));
  NeoxStackConfig custom = MakeNeoxStackConfig(64, 1, 4, 100);
  EXPECT_EQ(custom.num_heads, 4);
  EXPECT_EQ(custom.head_dim, 16);
  EXPECT_EQ(custom.rotary_dims, 4);
  EXPECT_EQ(custom.intermediate_size, 100);
}

// ---------------------------------------------------------------------------
// Inference without config.json.

struct BlockShape {
  int p, h, block_length, expansion_ratio, block_layers, token_layers;
  int block_heads, token_heads;  // by the head-dim rule
};

class InferBlockTest : public ModelConfigTest, public ::testing::WithParamInterface<BlockShape> {};

TEST_P(InferBlockTest, InfersEverySize) {
  const BlockShape s = GetParam();
  const ModelConfig expected =
      BlockConfig(40, Stack(s.p, s.block_layers, s.block_heads),
                  Stack(s.h, s.token_layers, s.token_heads), s.block_length, s.expansion_ratio);
  ASSERT_TRUE(expected.Validate().ok()) << expected.Validate();
  absl::StatusOr<ModelConfig> inferred = Infer(Checkpoint::FromLayout(expected));
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  EXPECT_EQ(*inferred, expected);
  EXPECT_EQ(inferred->eos_token_id, 0);
  EXPECT_EQ(inferred->block_decoder.rotary_base, 10000.0);
  EXPECT_EQ(inferred->token_decoder.layer_norm_eps, 1e-5);
  EXPECT_TRUE(inferred->token_decoder.parallel_residual);

  // The expansion weight saved as a Linear [R*H, P], and no unused embed_in.
  const int64_t rh = int64_t{s.expansion_ratio} * s.h;
  Checkpoint linear = Checkpoint::FromLayout(expected);
  linear.Set("token_decoder.expansion_layer.weight", {rh, s.p})
      .Remove("block_decoder.gpt_neox.embed_in.weight");
  inferred = Infer(linear);
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  EXPECT_EQ(*inferred, expected);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, InferBlockTest,
    ::testing::Values(BlockShape{64, 64, 4, 2, 2, 2, 2, 2},     // block_tiny
                      BlockShape{64, 64, 2, 1, 1, 3, 2, 2},     // L_B 2, R 1
                      BlockShape{128, 64, 8, 4, 2, 1, 4, 2},    // L_B 8, R 4, P != H
                      BlockShape{96, 160, 4, 2, 1, 1, 3, 5},    // odd head counts
                      BlockShape{160, 96, 2, 4, 1, 2, 5, 3},    // P 160: embedder 80
                      BlockShape{320, 64, 8, 1, 1, 1, 5, 2}));  // head dim 64: 5 heads

class InferVanillaTest : public ModelConfigTest,
                         public ::testing::WithParamInterface<std::tuple<int, int, int>> {};

TEST_P(InferVanillaTest, InfersEverySize) {
  const auto [d, layers, heads] = GetParam();
  const ModelConfig expected = VanillaConfig(48, Stack(d, layers, heads));
  absl::StatusOr<ModelConfig> inferred = Infer(Checkpoint::FromLayout(expected));
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  EXPECT_EQ(*inferred, expected);
  EXPECT_EQ(inferred->max_position_embeddings,
            0);  // unknown without config.json
}

INSTANTIATE_TEST_SUITE_P(Shapes, InferVanillaTest,
                         ::testing::Values(std::make_tuple(64, 2, 2), std::make_tuple(96, 1, 3),
                                           std::make_tuple(160, 3, 5)));

TEST_F(ModelConfigTest, HalfPrecisionCheckpointsInferTheSame) {
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    Checkpoint checkpoint = Checkpoint::FromLayout(kTinyBlock);
    checkpoint.SetDType(dtype);
    absl::StatusOr<ModelConfig> inferred = Infer(checkpoint);
    ASSERT_TRUE(inferred.ok()) << inferred.status();
    EXPECT_EQ(*inferred, kTinyBlock);
  }
}

TEST_F(ModelConfigTest, IgnoresPythiaBuffers) {
  Checkpoint checkpoint = Checkpoint::FromLayout(kTinyVanilla);
  for (int i = 0; i < 2; ++i) {
    checkpoint.Set(absl::StrCat("gpt_neox.layers.", i, ".attention.masked_bias"), {});
    checkpoint.Set(absl::StrCat("gpt_neox.layers.", i, ".attention.rotary_emb.inv_freq"), {4});
  }
  const std::map<std::string, std::vector<int64_t>> masks = {
      {"gpt_neox.layers.0.attention.bias", {1, 1, 8, 8}},
      {"gpt_neox.layers.1.attention.bias", {1, 1, 8, 8}}};
  absl::StatusOr<ModelConfig> inferred = Infer(checkpoint, std::nullopt, masks);
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  EXPECT_EQ(*inferred, kTinyVanilla);

  // Opened without the checkpoint options, the BOOL masks are rejected by name.
  auto strict = SafetensorsFile::Open(path_);
  ASSERT_FALSE(strict.ok());
  EXPECT_THAT(std::string(strict.status().message()),
              AllOf(HasSubstr("gpt_neox.layers.0.attention.bias"), HasSubstr("BOOL")));
}

// ---------------------------------------------------------------------------
// config.json.

TEST_F(ModelConfigTest, BlockConfigJsonOverrides) {
  const json config = {
      {"model_type", "block_transformer"},
      {"vocab_size", 32},
      {"eos_token_id", 3},
      {"block_length", 4},
      {"expansion_ratio", 2},
      {"max_sequence_length", 1024},
      {"some_future_key", {{"anything", 1}}},  // unknown top-level keys are ignored
      {"block_decoder",
       {{"hidden_size", 64},
        {"num_hidden_layers", 2},
        {"num_attention_heads", 4},
        {"intermediate_size", 256},
        {"rotary_pct", 0.5},
        {"rotary_emb_base", 500},
        {"layer_norm_eps", 1e-6}}},
      {"token_decoder",
       {{"use_parallel_residual", false}, {"hidden_act", "gelu"}, {"rope_scaling", nullptr}}},
  };
  absl::StatusOr<ModelConfig> inferred = Infer(Checkpoint::FromLayout(kTinyBlock), config);
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  ModelConfig expected = kTinyBlock;
  expected.eos_token_id = 3;
  expected.max_sequence_length = 1024;
  expected.block_decoder.num_heads = 4;
  expected.block_decoder.head_dim = 16;
  expected.block_decoder.rotary_pct = 0.5;
  expected.block_decoder.rotary_dims = 8;
  expected.block_decoder.rotary_base = 500;
  expected.block_decoder.layer_norm_eps = 1e-6;
  expected.token_decoder.parallel_residual = false;
  EXPECT_EQ(*inferred, expected);
}

TEST_F(ModelConfigTest, VanillaHuggingFaceConfig) {
  // The keys of a Pythia config.json, including ones the engine does not use.
  const json config = json::parse(R"({
    "architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0,
    "hidden_act": "gelu", "hidden_size": 64, "initializer_range": 0.02,
    "intermediate_size": 256, "layer_norm_eps": 1e-05, "max_position_embeddings": 2048,
    "model_type": "gpt_neox", "num_attention_heads": 8, "num_hidden_layers": 2,
    "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": false,
    "torch_dtype": "float16", "transformers_version": "4.24.0", "use_cache": true,
    "use_parallel_residual": true, "vocab_size": 32, "attention_bias": true,
    "attention_dropout": 0.0, "hidden_dropout": 0.0, "rope_scaling": null})");
  absl::StatusOr<ModelConfig> inferred = Infer(Checkpoint::FromLayout(kTinyVanilla), config);
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  ModelConfig expected = VanillaConfig(32, Stack(64, 2, 8));
  expected.vanilla.rotary_dims = 2;  // head dim 8 * 0.25
  expected.max_position_embeddings = 2048;
  EXPECT_EQ(*inferred, expected);
}

TEST_F(ModelConfigTest, NewerHuggingFaceSpellings) {
  const json config = {{"rope_theta", 1000}, {"partial_rotary_factor", 0.5}};
  absl::StatusOr<ModelConfig> inferred = Infer(Checkpoint::FromLayout(kTinyVanilla), config);
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  EXPECT_EQ(inferred->vanilla.rotary_base, 1000);
  EXPECT_EQ(inferred->vanilla.rotary_pct, 0.5);
  EXPECT_EQ(inferred->vanilla.rotary_dims, 16);
  ExpectError(Checkpoint::FromLayout(kTinyVanilla),
              json{{"rotary_emb_base", 10000}, {"rope_theta", 1000}},
              {"rotary_emb_base", "contradicts", "rope_theta"});
}

TEST_F(ModelConfigTest, ToJsonRoundTrips) {
  ModelConfig custom = kTinyBlock;
  custom.eos_token_id = 7;
  custom.max_sequence_length = 4096;
  custom.token_decoder = MakeNeoxStackConfig(64, 2, 8);
  custom.token_decoder.rotary_pct = 0.5;
  custom.token_decoder.rotary_dims = 4;
  custom.token_decoder.rotary_base = 123.5;
  custom.token_decoder.layer_norm_eps = 3e-7;
  custom.token_decoder.parallel_residual = false;
  ModelConfig vanilla = kTinyVanilla;
  vanilla.max_position_embeddings = 512;
  vanilla.vanilla.num_heads = 1;
  vanilla.vanilla.head_dim = 64;
  vanilla.vanilla.rotary_dims = 16;
  for (const ModelConfig& config : {kTinyBlock, custom, kTinyVanilla, vanilla}) {
    ASSERT_TRUE(config.Validate().ok()) << config.Validate();
    absl::StatusOr<ModelConfig> inferred = Infer(Checkpoint::FromLayout(config), config.ToJson());
    ASSERT_TRUE(inferred.ok()) << inferred.status();
    EXPECT_EQ(*inferred, config) << config.ToJson().dump();
  }
}

TEST(ModelConfigJsonTest, ToJsonWritesTheDocumentedKeys) {
  const json block = PresetConfig("block_main_b4_85")->ToJson();
  EXPECT_EQ(block["model_type"], "block_transformer");
  EXPECT_EQ(block["vocab_size"], 50304);
  EXPECT_EQ(block["eos_token_id"], 0);
  EXPECT_EQ(block["block_length"], 4);
  EXPECT_EQ(block["expansion_ratio"], 2);
  EXPECT_FALSE(block.contains("max_sequence_length"));
  for (const char* stack : {"block_decoder", "token_decoder"}) {
    const json& s = block[stack];
    EXPECT_EQ(s["hidden_size"], 768);
    EXPECT_EQ(s["num_hidden_layers"], 6);
    EXPECT_EQ(s["num_attention_heads"], 12);
    EXPECT_EQ(s["intermediate_size"], 3072);
    EXPECT_EQ(s["rotary_pct"], 0.25);
    EXPECT_EQ(s["rotary_emb_base"], 10000.0);
    EXPECT_EQ(s["layer_norm_eps"], 1e-5);
    EXPECT_EQ(s["use_parallel_residual"], true);
    EXPECT_EQ(s.size(), 8u);
  }
  const json vanilla = PresetConfig("vanilla_160")->ToJson();
  EXPECT_EQ(vanilla["model_type"], "gpt_neox");
  EXPECT_EQ(vanilla["hidden_size"], 768);
  EXPECT_EQ(vanilla["num_hidden_layers"], 12);
  EXPECT_EQ(vanilla["num_attention_heads"], 12);
  EXPECT_EQ(vanilla["intermediate_size"], 3072);
  EXPECT_EQ(vanilla["max_position_embeddings"], 2048);
  EXPECT_EQ(vanilla["hidden_act"], "gelu");
  EXPECT_EQ(vanilla["tie_word_embeddings"], false);
  EXPECT_EQ(vanilla["vocab_size"], 50304);
}

// ---------------------------------------------------------------------------
// Errors in the checkpoint.

TEST_F(ModelConfigTest, KindErrors) {
  Checkpoint mixed = Checkpoint::FromLayout(kTinyBlock);
  mixed.Set("gpt_neox.embed_in.weight", {32, 64});
  ExpectError(mixed, std::nullopt,
              {path_, "mixes", "Block Transformer tensors (e.g. block_decoder.",
               "vanilla GPT-NeoX tensors (e.g. gpt_neox.embed_in.weight)"});
  Checkpoint neither;
  neither.Set("transformer.wte.weight", {4, 4});
  ExpectError(neither, std::nullopt, {"neither", "transformer.wte.weight"});
  ExpectError(Checkpoint(), std::nullopt, {"no tensors"});
}

TEST_F(ModelConfigTest, StackWithoutLayers) {
  Checkpoint checkpoint = Checkpoint::FromLayout(kTinyBlock);
  checkpoint.RemovePrefix("token_decoder.gpt_neox.layers.");
  ExpectError(checkpoint, std::nullopt, {"token_decoder.gpt_neox.layers.N", "at least one layer"});
}

TEST_F(ModelConfigTest, LayerIndicesMustBeContiguous) {
  const ModelConfig config = BlockConfig(32, Stack(64, 1, 2), Stack(64, 3, 2), 4, 2);
  Checkpoint checkpoint = Checkpoint::FromLayout(config);
  checkpoint.RemovePrefix("token_decoder.gpt_neox.layers.1.");
  ExpectError(checkpoint, std::nullopt,
              {"none for layer 1", "token_decoder.gpt_neox.layers.1.input_layernorm.weight"});
}

TEST_F(ModelConfigTest, MissingTensorOfALayer) {
  Checkpoint checkpoint = Checkpoint::FromLayout(kTinyBlock);
  checkpoint.Remove("block_decoder.gpt_neox.layers.1.attention.dense.bias");
  ExpectError(checkpoint, std::nullopt,
              {"missing tensor block_decoder.gpt_neox.layers.1.attention.dense.bias", "[64]"});
  for (const char* name :
       {"block_decoder.gpt_neox.layers.0.input_layernorm.weight",
        "token_decoder.gpt_neox.layers.0.mlp.dense_h_to_4h.weight", "embedder.embeddings.weight",
        "token_decoder.expansion_layer.weight", "token_decoder.expansion_layer.bias",
        "token_decoder.embed_out.weight", "token_decoder.gpt_neox.embed_in.weight",
        "block_decoder.gpt_neox.final_layer_norm.bias"}) {
    Checkpoint missing = Checkpoint::FromLayout(kTinyBlock);
    missing.Remove(name);
    ExpectError(missing, std::nullopt, {absl::StrCat("missing tensor ", name)});
  }
  Checkpoint vanilla = Checkpoint::FromLayout(kTinyVanilla);
  vanilla.Remove("embed_out.weight");
  ExpectError(vanilla, std::nullopt, {"missing tensor embed_out.weight", "[32, 64]"});
}

TEST_F(ModelConfigTest, WrongShapesNameTensorAndBothShapes) {
  struct Case {
    std::string name;
    std::vector<int64_t> shape;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"block_decoder.gpt_neox.layers.1.attention.query_key_value.weight", {192, 65}, "[192, 64]"},
      {"block_decoder.gpt_neox.layers.0.attention.query_key_value.bias", {191}, "[192]"},
      {"token_decoder.gpt_neox.layers.1.attention.dense.weight", {64, 32}, "[64, 64]"},
      {"token_decoder.gpt_neox.layers.0.attention.dense.bias", {64, 1}, "[64]"},
      {"token_decoder.gpt_neox.layers.1.mlp.dense_h_to_4h.weight", {256, 32}, "[256, 64]"},
      {"token_decoder.gpt_neox.layers.1.mlp.dense_h_to_4h.bias", {255}, "[256]"},
      {"block_decoder.gpt_neox.layers.1.mlp.dense_4h_to_h.weight", {64, 128}, "[64, 256]"},
      {"block_decoder.gpt_neox.layers.1.mlp.dense_4h_to_h.bias", {65}, "[64]"},
      {"block_decoder.gpt_neox.layers.1.input_layernorm.bias", {32}, "[64]"},
      {"token_decoder.gpt_neox.layers.1.post_attention_layernorm.weight", {63}, "[64]"},
      {"token_decoder.gpt_neox.final_layer_norm.weight", {32}, "[64]"},
      {"token_decoder.gpt_neox.embed_in.weight", {32, 32}, "[32, 64]"},
      {"token_decoder.embed_out.weight", {33, 64}, "[32, 64]"},
      {"block_decoder.gpt_neox.embed_in.weight", {32, 16}, "[32, 64]"},
      {"token_decoder.expansion_layer.weight", {128, 32, 1}, "[128, 64, 1]"},
      {"token_decoder.expansion_layer.weight", {128, 64, 2}, "[128, 64, 1]"},
      {"token_decoder.expansion_layer.bias", {64}, "[128]"},
  };
  for (const Case& c : cases) {
    Checkpoint checkpoint = Checkpoint::FromLayout(kTinyBlock);
    checkpoint.Set(c.name, c.shape);
    ExpectError(checkpoint, std::nullopt,
                {path_, c.name, ShapeToString(c.shape), absl::StrCat("expected ", c.expected)});
  }
  // Shapes that feed the inference itself.
  Checkpoint norm = Checkpoint::FromLayout(kTinyBlock);
  norm.Set("token_decoder.gpt_neox.layers.0.input_layernorm.weight", {64, 1});
  ExpectError(norm, std::nullopt,
              {"token_decoder.gpt_neox.layers.0.input_layernorm.weight", "expected rank 1"});
  Checkpoint vanilla = Checkpoint::FromLayout(kTinyVanilla);
  vanilla.Set("gpt_neox.layers.0.input_layernorm.weight", {96});
  // The other tensors now disagree with the inferred width 96.
  ExpectError(vanilla, std::nullopt, {"gpt_neox.embed_in.weight", "expected [32, 96]"});
}

TEST_F(ModelConfigTest, EmbedderWidthMustDivideBlockHidden) {
  Checkpoint checkpoint = Checkpoint::FromLayout(kTinyBlock);
  checkpoint.Set("embedder.embeddings.weight", {32, 24});
  ExpectError(checkpoint, std::nullopt,
              {"embedder.embeddings.weight", "[32, 24]", "does not divide", "64"});
}

TEST_F(ModelConfigTest, ExpansionRowsMustBeMultipleOfTokenHidden) {
  Checkpoint checkpoint = Checkpoint::FromLayout(kTinyBlock);
  checkpoint.Set("token_decoder.expansion_layer.weight", {130, 64, 1});
  ExpectError(checkpoint, std::nullopt,
              {"token_decoder.expansion_layer.weight", "[130, 64, 1]", "not a multiple", "64"});
}

TEST_F(ModelConfigTest, UnexpectedTensorsAreRejected) {
  for (const char* name :
       {"token_decoder.gpt_neox.layers.0.attention.extra", "embedder.position.weight",
        "block_decoder.gpt_neox.layers.x.mlp.dense_h_to_4h.weight",
        "block_decoder.gpt_neox.layers.01.input_layernorm.weight",
        "token_decoder.lm_head.weight"}) {
    Checkpoint checkpoint = Checkpoint::FromLayout(kTinyBlock);
    checkpoint.Set(name, {4});
    ExpectError(checkpoint, std::nullopt, {"unexpected tensor", name});
  }
  Checkpoint vanilla = Checkpoint::FromLayout(kTinyVanilla);
  vanilla.Set("gpt_neox.emb_dropout.weight", {4});
  ExpectError(vanilla, std::nullopt, {"unexpected tensor gpt_neox.emb_dropout.weight"});
}

TEST_F(ModelConfigTest, IntegerWeightsAreRejected) {
  Checkpoint checkpoint = Checkpoint::FromLayout(kTinyVanilla);
  checkpoint.Set("gpt_neox.layers.1.attention.dense.weight", {64, 64}, DType::kI32);
  ExpectError(checkpoint, std::nullopt, {"gpt_neox.layers.1.attention.dense.weight", "I32"});
}

TEST_F(ModelConfigTest, HeadCountMustBeInferable) {
  // 80 is not a multiple of the default head dim 32.
  const ModelConfig config = VanillaConfig(32, Stack(80, 1, 5));
  ExpectError(Checkpoint::FromLayout(config), std::nullopt,
              {"hidden size 80", "default head dim 32", "num_attention_heads"});
  absl::StatusOr<ModelConfig> fixed =
      Infer(Checkpoint::FromLayout(config), json{{"num_attention_heads", 5}});
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ(*fixed, config);
}

// ---------------------------------------------------------------------------
// Errors in config.json.

TEST_F(ModelConfigTest, ConfigContradictingTensorsNamesKeyTensorAndSizes) {
  const Checkpoint block = Checkpoint::FromLayout(kTinyBlock);
  ExpectError(block, json{{"block_decoder", {{"hidden_size", 128}}}},
              {"block_decoder.hidden_size 128",
               "block_decoder.gpt_neox.layers.0.input_layernorm.weight", "[64]", "gives 64"});
  ExpectError(block, json{{"token_decoder", {{"num_hidden_layers", 3}}}},
              {"token_decoder.num_hidden_layers 3", "2 layers"});
  ExpectError(block, json{{"token_decoder", {{"intermediate_size", 128}}}},
              {"token_decoder.intermediate_size 128",
               "token_decoder.gpt_neox.layers.0.mlp.dense_h_to_4h.weight", "[256, 64]"});
  ExpectError(block, json{{"vocab_size", 50304}},
              {"vocab_size 50304", "embedder.embeddings.weight", "[32, 16]", "gives 32"});
  ExpectError(block, json{{"block_length", 8}},
              {"block_length 8", "embedder.embeddings.weight", "gives 4"});
  ExpectError(
      block, json{{"expansion_ratio", 4}},
      {"expansion_ratio 4", "token_decoder.expansion_layer.weight", "[128, 64, 1]", "gives 2"});
  const Checkpoint vanilla = Checkpoint::FromLayout(kTinyVanilla);
  ExpectError(vanilla, json{{"hidden_size", 512}},
              {"hidden_size 512", "gpt_neox.layers.0.input_layernorm.weight", "[64]"});
  ExpectError(vanilla, json{{"vocab_size", 50304}},
              {"vocab_size 50304", "gpt_neox.embed_in.weight", "[32, 64]", "gives 32"});
  ExpectError(vanilla, json{{"num_hidden_layers", 1}}, {"num_hidden_layers 1", "2 layers"});
}

TEST_F(ModelConfigTest, ConfigAskingForUnsupportedMath) {
  const Checkpoint vanilla = Checkpoint::FromLayout(kTinyVanilla);
  ExpectError(vanilla, json{{"hidden_act", "gelu_new"}}, {"hidden_act", "'gelu_new'"});
  ExpectError(vanilla, json{{"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}}},
              {"rope_scaling", "linear"});
  ExpectError(vanilla, json{{"attention_bias", false}}, {"attention_bias"});
  ExpectError(vanilla, json{{"tie_word_embeddings", true}}, {"tie_word_embeddings"});
  ExpectError(vanilla, json{{"num_attention_heads", 3}},
              {"num_attention_heads 3", "does not divide", "64"});
  ExpectError(vanilla, json{{"num_attention_heads", 0}}, {"num_attention_heads 0"});
  ExpectError(vanilla, json{{"rotary_pct", 0.3}}, {"rotary_pct 0.3", "= 9", "even"});
  ExpectError(vanilla, json{{"rotary_pct", 1.5}}, {"rotary_pct 1.5", "[0, 1]"});
  ExpectError(vanilla, json{{"rotary_emb_base", 0}}, {"rotary_emb_base"});
  ExpectError(vanilla, json{{"layer_norm_eps", 0}}, {"layer_norm_eps"});
  ExpectError(vanilla, json{{"eos_token_id", 32}}, {"eos_token_id 32", "[0, 32)"});
  ExpectError(vanilla, json{{"max_sequence_length", -1}}, {"max_sequence_length -1"});

  const Checkpoint block = Checkpoint::FromLayout(kTinyBlock);
  ExpectError(block, json{{"token_decoder", {{"hidden_act", "relu"}}}},
              {"token_decoder.hidden_act", "'relu'"});
  ExpectError(block, json{{"block_decoder", {{"num_key_value_heads", 1}}}},
              {"block_decoder.num_key_value_heads", "not a known stack key"});
  ExpectError(block, json{{"block_decoder", {{"rotary_pct", 0.3}}}},
              {"block_decoder.rotary_pct 0.3"});
}

TEST_F(ModelConfigTest, ConfigWithWrongTypesOrKind) {
  const Checkpoint block = Checkpoint::FromLayout(kTinyBlock);
  ExpectError(block, json{{"model_type", "gpt_neox"}},
              {"model_type", "'gpt_neox'", "block", "block_transformer"});
  ExpectError(Checkpoint::FromLayout(kTinyVanilla), json{{"model_type", "llama"}},
              {"model_type", "'llama'"});
  ExpectError(block, json{{"block_decoder", 5}}, {"block_decoder", "JSON object"});
  ExpectError(block, json{{"token_decoder", {{"hidden_size", "64"}}}},
              {"token_decoder.hidden_size", "must be an integer"});
  ExpectError(block, json{{"token_decoder", {{"hidden_size", 64.5}}}},
              {"token_decoder.hidden_size", "must be an integer"});
  ExpectError(block, json{{"block_decoder", {{"use_parallel_residual", "yes"}}}},
              {"block_decoder.use_parallel_residual", "true or false"});
  ExpectError(block, json{{"eos_token_id", 1e12}}, {"eos_token_id", "must be an integer"});
  ExpectError(block, json{{"vocab_size", 99999999999}}, {"vocab_size", "must be an integer"});
  ExpectError(block, json{{"block_decoder", {{"rotary_emb_base", "big"}}}},
              {"block_decoder.rotary_emb_base", "must be a number"});
  ExpectError(block, json::array({1, 2}), {"not a JSON object"});
}

// ---------------------------------------------------------------------------
// Validate().

TEST(ModelConfigValidateTest, NamesTheBrokenField) {
  EXPECT_FALSE(ModelConfig().Validate().ok());
  ASSERT_TRUE(kTinyBlock.Validate().ok());
  ASSERT_TRUE(kTinyVanilla.Validate().ok());
  struct Case {
    std::function<void(ModelConfig&)> breaks;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](ModelConfig& c) { c.vocab_size = 0; }, "vocab_size 0"},
      {[](ModelConfig& c) { c.eos_token_id = -1; }, "eos_token_id -1"},
      {[](ModelConfig& c) { c.max_sequence_length = -5; }, "max_sequence_length -5"},
      {[](ModelConfig& c) { c.block_length = 0; }, "block_length 0"},
      {[](ModelConfig& c) { c.expansion_ratio = 0; }, "expansion_ratio 0"},
      {[](ModelConfig& c) { c.embedder_dim = 8; }, "embedder dim 8"},
      {[](ModelConfig& c) { c.block_decoder.hidden_size = 0; }, "block_decoder.hidden_size 0"},
      {[](ModelConfig& c) { c.token_decoder.num_layers = 0; }, "token_decoder.num_hidden_layers 0"},
      {[](ModelConfig& c) { c.block_decoder.num_heads = 3; },
       "block_decoder.num_attention_heads 3"},
      {[](ModelConfig& c) { c.token_decoder.head_dim = 16; }, "token_decoder.head_dim 16"},
      {[](ModelConfig& c) { c.token_decoder.intermediate_size = 0; },
       "token_decoder.intermediate_size 0"},
      {[](ModelConfig& c) { c.block_decoder.rotary_dims = 6; }, "block_decoder.rotary dims 6"},
      {[](ModelConfig& c) { c.token_decoder.rotary_pct = -0.5; }, "token_decoder.rotary_pct"},
      {[](ModelConfig& c) { c.token_decoder.rotary_base = -1; }, "token_decoder.rotary_emb_base"},
      {[](ModelConfig& c) { c.block_decoder.layer_norm_eps = NAN; },
       "block_decoder.layer_norm_eps"},
  };
  for (const Case& c : cases) {
    ModelConfig config = kTinyBlock;
    c.breaks(config);
    EXPECT_THAT(std::string(config.Validate().message()), HasSubstr(c.message)) << c.message;
  }
  ModelConfig vanilla = kTinyVanilla;
  vanilla.vanilla.num_layers = 0;
  EXPECT_THAT(std::string(vanilla.Validate().message()), HasSubstr("num_hidden_layers 0"));
  vanilla = kTinyVanilla;
  vanilla.max_position_embeddings = -1;
  EXPECT_THAT(std::string(vanilla.Validate().message()), HasSubstr("max_position_embeddings -1"));
}

// ---------------------------------------------------------------------------
// Presets and parameter counts.

TEST(PresetsTest, NamesAndUnknownName) {
  const std::vector<std::string> names = PresetNames();
  for (const char* name :
       {"block_main_b4_5", "block_main_b4_19", "block_main_b4_85", "block_main_b4_300",
        "block_main_b4_800", "block_main_b4_1.2b", "vanilla_31", "vanilla_70", "vanilla_160",
        "vanilla_410", "block_tiny", "vanilla_tiny"}) {
    EXPECT_THAT(names, ::testing::Contains(name));
  }
  absl::StatusOr<ModelConfig> unknown = PresetConfig("block_main_b4_9000");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()),
              AllOf(HasSubstr("block_main_b4_9000"), HasSubstr("block_main_b4_85"),
                    HasSubstr("vanilla_tiny")));
  for (const std::string& name : names) {
    absl::StatusOr<ModelConfig> config = PresetConfig(name);
    ASSERT_TRUE(config.ok()) << name;
    EXPECT_TRUE(config->Validate().ok()) << name << ": " << config->Validate();
  }
}

TEST(PresetsTest, PaperBlockModelsMatchSpecTable) {
  struct Row {
    const char* name;
    int hidden, layers, heads, embedder_dim;
    double non_embedding, unit;  // the table's figure and its rounding unit
  };
  const Row rows[] = {
      {"block_main_b4_5", 256, 3, 8, 64, 4.7e6, 1e5},
      {"block_main_b4_19", 512, 3, 8, 128, 18.9e6, 1e5},
      {"block_main_b4_85", 768, 6, 12, 192, 85.1e6, 1e5},
      {"block_main_b4_300", 1024, 12, 16, 256, 302e6, 1e6},
      {"block_main_b4_800", 2048, 8, 16, 512, 806e6, 1e6},
      {"block_main_b4_1.2b", 2048, 12, 16, 512, 1.21e9, 1e7},
  };
  for (const Row& row : rows) {
    const ModelConfig c = *PresetConfig(row.name);
    EXPECT_EQ(c.kind, ModelKind::kBlock) << row.name;
    EXPECT_EQ(c.vocab_size, 50304);
    EXPECT_EQ(c.eos_token_id, 0);
    EXPECT_EQ(c.block_length, 4);
    EXPECT_EQ(c.expansion_ratio, 2);
    EXPECT_EQ(c.embedder_dim, row.embedder_dim) << row.name;
    EXPECT_EQ(c.block_decoder, Stack(row.hidden, row.layers, row.heads)) << row.name;
    EXPECT_EQ(c.token_decoder, Stack(row.hidden, row.layers, row.heads)) << row.name;
    EXPECT_EQ(std::round(c.NonEmbeddingParameters() / row.unit) * row.unit, row.non_embedding)
        << row.name << ": " << c.NonEmbeddingParameters();
  }
}

TEST(PresetsTest, VanillaModelsArePythiaConfigs) {
  // Exact non-embedding counts from the Pythia paper's model table.
  struct Row {
    const char* name;
    int hidden, layers, heads;
    int64_t non_embedding;
  };
  const Row rows[] = {
      {"vanilla_70", 512, 6, 8, 18'915'328},
      {"vanilla_160", 768, 12, 12, 85'056'000},
      {"vanilla_410", 1024, 24, 16, 302'311'424},
  };
  for (const Row& row : rows) {
    const ModelConfig c = *PresetConfig(row.name);
    EXPECT_EQ(c.kind, ModelKind::kVanilla);
    EXPECT_EQ(c.vocab_size, 50304);
    EXPECT_EQ(c.max_position_embeddings, 2048);
    EXPECT_EQ(c.vanilla, Stack(row.hidden, row.layers, row.heads)) << row.name;
    EXPECT_EQ(c.NonEmbeddingParameters(), row.non_embedding) << row.name;
  }
  EXPECT_EQ(PresetConfig("vanilla_31")->vanilla, Stack(256, 6, 8));
}

TEST(PresetsTest, TinyPresets) {
  EXPECT_EQ(*PresetConfig("block_tiny"), BlockConfig(512, Stack(64, 2, 2), Stack(64, 2, 2), 4, 2));
  ModelConfig vanilla = VanillaConfig(512, Stack(64, 2, 2));
  vanilla.max_position_embeddings = 2048;
  EXPECT_EQ(*PresetConfig("vanilla_tiny"), vanilla);
}

TEST(ParameterCountTest, CountsStacksAndFinalNormsOnly) {
  // One layer of width 8 and MLP 32: LNs 32, qkv 216, dense 72, MLP 288 + 264,
  // then the final LN 16.
  ModelConfig c = VanillaConfig(1000, Stack(8, 1, 1));
  EXPECT_EQ(c.NonEmbeddingParameters(), 32 + 216 + 72 + 288 + 264 + 16);
  // Embeddings, embed_out and the expansion layer are not counted.
  ModelConfig block = BlockConfig(1000, Stack(8, 1, 1), Stack(8, 1, 1), 2, 4);
  EXPECT_EQ(block.NonEmbeddingParameters(), 2 * (32 + 216 + 72 + 288 + 264 + 16));
  block.vocab_size = 5;
  block.expansion_ratio = 1;
  EXPECT_EQ(block.NonEmbeddingParameters(), 2 * (32 + 216 + 72 + 288 + 264 + 16));
}

}  // namespace
}  // namespace blockserve
