#include "shared/model/presets.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace blockserve {
namespace {

constexpr int kPaperVocab = 50304;
constexpr int kTestVocab = 512;

// P = block decoder width, H = token decoder width; heads by the head-dim rule.
ModelConfig Block(int vocab, int p, int block_layers, int h, int token_layers,
                  int block_length, int expansion_ratio) {
  ModelConfig config;
  config.kind = ModelKind::kBlock;
  config.vocab_size = vocab;
  config.block_length = block_length;
  config.embedder_dim = p / block_length;
  config.expansion_ratio = expansion_ratio;
  config.block_decoder = MakeNeoxStackConfig(p, block_layers);
  config.token_decoder = MakeNeoxStackConfig(h, token_layers);
  return config;
}

ModelConfig Vanilla(int vocab, int d, int layers, int max_positions) {
  ModelConfig config;
  config.kind = ModelKind::kVanilla;
  config.vocab_size = vocab;
  config.vanilla = MakeNeoxStackConfig(d, layers);
  config.max_position_embeddings = max_positions;
  return config;
}

struct Preset {
  const char* name;
  ModelConfig config;
};

const std::vector<Preset>& Presets() {
  static const auto* presets = new std::vector<Preset>{
      // The paper's models (spec section 5): L_B 4, R 2, P = H.
      {"block_main_b4_5", Block(kPaperVocab, 256, 3, 256, 3, 4, 2)},
      {"block_main_b4_19", Block(kPaperVocab, 512, 3, 512, 3, 4, 2)},
      {"block_main_b4_85", Block(kPaperVocab, 768, 6, 768, 6, 4, 2)},
      {"block_main_b4_300", Block(kPaperVocab, 1024, 12, 1024, 12, 4, 2)},
      {"block_main_b4_800", Block(kPaperVocab, 2048, 8, 2048, 8, 4, 2)},
      {"block_main_b4_1.2b", Block(kPaperVocab, 2048, 12, 2048, 12, 4, 2)},
      // Pythia configurations (vanilla_70/160/410 = pythia-70m/160m/410m).
      {"vanilla_31", Vanilla(kPaperVocab, 256, 6, 2048)},
      {"vanilla_70", Vanilla(kPaperVocab, 512, 6, 2048)},
      {"vanilla_160", Vanilla(kPaperVocab, 768, 12, 2048)},
      {"vanilla_410", Vanilla(kPaperVocab, 1024, 24, 2048)},
      // Test models. block_tiny: the main models' shape in miniature (2 heads).
      {"block_tiny", Block(kTestVocab, 64, 2, 64, 2, 4, 2)},
      // P != H, odd head count (P 96 = 3 x 32), L_B 8, R 4, unequal depths.
      {"block_tiny_mixed", Block(kTestVocab, 96, 2, 64, 3, 8, 4)},
      // Shortest blocks and a single prefix vector: L_B 2, R 1.
      {"block_tiny_b2", Block(kTestVocab, 64, 1, 64, 2, 2, 1)},
      {"vanilla_tiny", Vanilla(kTestVocab, 64, 2, 2048)},
  };
  return *presets;
}

}  // namespace

absl::StatusOr<ModelConfig> PresetConfig(absl::string_view name) {
  for (const Preset& preset : Presets()) {
    if (preset.name == name) return preset.config;
  }
  return absl::NotFoundError(
      absl::StrCat("unknown preset '", name,
                   "' (known: ", absl::StrJoin(PresetNames(), ", "), ")"));
}

std::vector<std::string> PresetNames() {
  std::vector<std::string> names;
  for (const Preset& preset : Presets()) names.push_back(preset.name);
  return names;
}

}  // namespace blockserve
