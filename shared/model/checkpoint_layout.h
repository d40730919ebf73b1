// The checkpoint format's tensor names and shapes, in one place.
//
// CheckpointLayout() lists every tensor of model.safetensors for a
// configuration (spec section 4): InferModelConfig checks a checkpoint against
// it, model loaders find their tensors by these names, and init-model writes
// exactly these tensors. Spell tensor names through this header only.
// Pure functions over value types; thread-safe.
#ifndef BLOCKSERVE_SHARED_MODEL_CHECKPOINT_LAYOUT_H_
#define BLOCKSERVE_SHARED_MODEL_CHECKPOINT_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "shared/model/model_config.h"
#include "shared/weights/safetensors.h"

namespace blockserve {

// What a tensor is, for initialization (init-model) and for loaders that keep
// vectors in F32.
enum class CheckpointTensorRole {
  kEmbedding,   // [V, width] lookup or output table
  kMatrix,      // a Linear (or kernel-1 Conv1d) weight, [out, in(, 1)]
  kBias,        // a Linear bias, [out]
  kNormWeight,  // LayerNorm scale, [D]
  kNormBias,    // LayerNorm shift, [D]
};

struct CheckpointTensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  bool required =
      true;  // false: may be absent (e.g. the unused block-decoder embed_in)
  CheckpointTensorRole role = CheckpointTensorRole::kMatrix;
};

// Stack prefixes (a stack's tensors are "<prefix>.layers.N.<suffix>" and
// "<prefix>.final_layer_norm.{weight,bias}").
inline constexpr absl::string_view kBlockDecoderPrefix =
    "block_decoder.gpt_neox";
inline constexpr absl::string_view kTokenDecoderPrefix =
    "token_decoder.gpt_neox";
inline constexpr absl::string_view kVanillaPrefix = "gpt_neox";

// Tensors outside the layer stacks.
inline constexpr absl::string_view kEmbedderName = "embedder.embeddings.weight";
inline constexpr absl::string_view kBlockEmbedInName =
    "block_decoder.gpt_neox.embed_in.weight";
inline constexpr absl::string_view kTokenEmbedInName =
    "token_decoder.gpt_neox.embed_in.weight";
inline constexpr absl::string_view kTokenEmbedOutName =
    "token_decoder.embed_out.weight";
inline constexpr absl::string_view kExpansionWeightName =
    "token_decoder.expansion_layer.weight";
inline constexpr absl::string_view kExpansionBiasName =
    "token_decoder.expansion_layer.bias";
inline constexpr absl::string_view kVanillaEmbedInName =
    "gpt_neox.embed_in.weight";
inline constexpr absl::string_view kVanillaEmbedOutName = "embed_out.weight";

// Per-layer suffixes (spec section 4).
inline constexpr absl::string_view kInputNormWeight = "input_layernorm.weight";
inline constexpr absl::string_view kInputNormBias = "input_layernorm.bias";
inline constexpr absl::string_view kPostAttentionNormWeight =
    "post_attention_layernorm.weight";
inline constexpr absl::string_view kPostAttentionNormBias =
    "post_attention_layernorm.bias";
inline constexpr absl::string_view kQkvWeight =
    "attention.query_key_value.weight";
inline constexpr absl::string_view kQkvBias = "attention.query_key_value.bias";
inline constexpr absl::string_view kAttentionDenseWeight =
    "attention.dense.weight";
inline constexpr absl::string_view kAttentionDenseBias = "attention.dense.bias";
inline constexpr absl::string_view kMlpUpWeight = "mlp.dense_h_to_4h.weight";
inline constexpr absl::string_view kMlpUpBias = "mlp.dense_h_to_4h.bias";
inline constexpr absl::string_view kMlpDownWeight = "mlp.dense_4h_to_h.weight";
inline constexpr absl::string_view kMlpDownBias = "mlp.dense_4h_to_h.bias";

// "<stack_prefix>.layers.<layer>.<suffix>".
std::string StackTensorName(absl::string_view stack_prefix, int layer,
                            absl::string_view suffix);
// "<stack_prefix>.final_layer_norm.<suffix>" (suffix "weight" or "bias").
std::string StackFinalNormName(absl::string_view stack_prefix,
                               absl::string_view suffix);

// Every tensor of one stack, layer by layer, then the final LayerNorm.
std::vector<CheckpointTensorSpec> StackLayout(absl::string_view stack_prefix,
                                              const NeoxStackConfig& stack);

// Every tensor of the official format for `config` (block or vanilla).
// The expansion weight is listed as [R*H, P, 1], as the paper's Conv1d saves
// it.
std::vector<CheckpointTensorSpec> CheckpointLayout(const ModelConfig& config);

// Whether a tensor of `shape` can be used as `spec`: equal shapes, or the
// spec's shape with trailing dimensions of 1 left out (a kernel-1 Conv1d
// weight [R*H, P, 1] saved as a Linear [R*H, P]).
bool ShapeMatchesLayout(const CheckpointTensorSpec& spec,
                        absl::Span<const int64_t> shape);

// Buffers that Hugging Face GPT-NeoX checkpoints may carry and no model reads:
// "<stack>.layers.N.attention.{bias,masked_bias,rotary_emb.inv_freq}" and
// "<stack>.rotary_emb.inv_freq". They are ignored, whatever their dtype.
bool IsIgnoredCheckpointBuffer(absl::string_view name);

// Options for opening a model checkpoint: tolerates ignored buffers of dtypes
// the engine does not support (Pythia's attention.bias masks are BOOL).
SafetensorsOpenOptions CheckpointOpenOptions();

// "[3, 4]"
std::string ShapeToString(absl::Span<const int64_t> shape);

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_MODEL_CHECKPOINT_LAYOUT_H_
