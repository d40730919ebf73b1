// Model configuration: the sizes and constants of a Block Transformer or a
// vanilla GPT-NeoX (Pythia) model, and how they are derived from a checkpoint.
//
// A configuration is inferred from the tensor shapes of model.safetensors
// (so a bare checkpoint with no config.json loads), then overridden by an
// optional config.json in the model directory. Validate() checks that the
// result is a model the engine can run. Plain value types; thread-compatible.
#ifndef BLOCKSERVE_SHARED_MODEL_MODEL_CONFIG_H_
#define BLOCKSERVE_SHARED_MODEL_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace blockserve {

class SafetensorsFile;

// One stack of GPT-NeoX layers (spec section 2).
struct NeoxStackConfig {
  int hidden_size = 0;  // D
  int num_layers = 0;
  int num_heads = 0;
  int head_dim = 0;           // D / num_heads
  int intermediate_size = 0;  // MLP width (4 D in the paper's models)
  int rotary_dims = 0;        // rotated dims per head: head_dim * rotary_pct
  double rotary_pct = 0.25;
  double rotary_base = 10000.0;
  double layer_norm_eps = 1e-5;
  bool parallel_residual = true;

  bool operator==(const NeoxStackConfig&) const = default;
};

enum class ModelKind { kBlock, kVanilla };

struct ModelConfig {
  ModelKind kind = ModelKind::kBlock;
  int vocab_size = 0;    // rows of the embedding tables and of embed_out
  int eos_token_id = 0;  // also the padding id of block models

  // Block Transformer only (spec section 1).
  int block_length = 0;           // L_B
  int embedder_dim = 0;           // P / L_B
  int expansion_ratio = 0;        // R
  NeoxStackConfig block_decoder;  // hidden P
  NeoxStackConfig token_decoder;  // hidden H

  // Vanilla GPT-NeoX only.
  NeoxStackConfig vanilla;
  int max_position_embeddings = 0;  // informational; 0 when unknown

  // Longest sequence the engine accepts, in tokens (0 = unbounded).
  int max_sequence_length = 0;

  bool operator==(const ModelConfig&) const = default;

  // Non-embedding parameter count, as the paper's model table counts it:
  // the layer stacks and their final LayerNorms. The embedding tables,
  // embed_out and the expansion layer are not counted (counting the
  // expansion would not reproduce the table: see docs/model-format.md).
  int64_t NonEmbeddingParameters() const;
  // Checks every size and constant; names the offending field.
  absl::Status Validate() const;
  // The configuration in the project's config.json form (see
  // docs/model-format.md).
  nlohmann::json ToJson() const;
};

absl::string_view ModelKindName(ModelKind kind);  // "block" or "vanilla"

// The paper's head-dimension rule: 32 if D <= 256, 64 if D <= 1536, else 128.
int DefaultHeadDim(int hidden_size);

// Rotated dims per head: int(head_dim * rotary_pct), truncated toward zero as
// Hugging Face's GPT-NeoX computes it (must come out even).
int RotaryDims(int head_dim, double rotary_pct);

// A stack with the paper's constants (rotary_pct 0.25, base 10000, eps 1e-5,
// parallel residual) and the derived fields filled in. num_heads 0: the head
// dim rule; intermediate_size 0: 4 * hidden_size.
NeoxStackConfig MakeNeoxStackConfig(int hidden_size, int num_layers,
                                    int num_heads = 0,
                                    int intermediate_size = 0);

// Infers the configuration from the checkpoint's tensor names and shapes,
// then applies `config_json` (the contents of config.json, or nullopt).
// Every shape is checked against the inferred sizes; an inconsistent tensor
// is an INVALID_ARGUMENT error that names it, as is a config.json key that
// contradicts a tensor or asks for something the engine cannot run. The
// result passes Validate(). Rules: docs/model-format.md.
absl::StatusOr<ModelConfig> InferModelConfig(
    const SafetensorsFile& file,
    const std::optional<nlohmann::json>& config_json);

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_MODEL_MODEL_CONFIG_H_
