#include "shared/model/checkpoint_layout.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace blockserve {
namespace {

using Role = CheckpointTensorRole;

void AddSpec(std::vector<CheckpointTensorSpec>& out, std::string name,
             std::vector<int64_t> shape, Role role, bool required = true) {
  out.push_back({std::move(name), std::move(shape), required, role});
}

}  // namespace

std::string StackTensorName(absl::string_view stack_prefix, int layer,
                            absl::string_view suffix) {
  return absl::StrCat(stack_prefix, ".layers.", layer, ".", suffix);
}

std::string StackFinalNormName(absl::string_view stack_prefix,
                               absl::string_view suffix) {
  return absl::StrCat(stack_prefix, ".final_layer_norm.", suffix);
}

std::vector<CheckpointTensorSpec> StackLayout(absl::string_view stack_prefix,
                                              const NeoxStackConfig& stack) {
  const int64_t d = stack.hidden_size;
  const int64_t inner = stack.intermediate_size;
  std::vector<CheckpointTensorSpec> out;
  for (int i = 0; i < stack.num_layers; ++i) {
    auto name = [&](absl::string_view suffix) {
      return StackTensorName(stack_prefix, i, suffix);
    };
    AddSpec(out, name(kInputNormWeight), {d}, Role::kNormWeight);
    AddSpec(out, name(kInputNormBias), {d}, Role::kNormBias);
    AddSpec(out, name(kPostAttentionNormWeight), {d}, Role::kNormWeight);
    AddSpec(out, name(kPostAttentionNormBias), {d}, Role::kNormBias);
    AddSpec(out, name(kQkvWeight), {3 * d, d}, Role::kMatrix);
    AddSpec(out, name(kQkvBias), {3 * d}, Role::kBias);
    AddSpec(out, name(kAttentionDenseWeight), {d, d}, Role::kMatrix);
    AddSpec(out, name(kAttentionDenseBias), {d}, Role::kBias);
    AddSpec(out, name(kMlpUpWeight), {inner, d}, Role::kMatrix);
    AddSpec(out, name(kMlpUpBias), {inner}, Role::kBias);
    AddSpec(out, name(kMlpDownWeight), {d, inner}, Role::kMatrix);
    AddSpec(out, name(kMlpDownBias), {d}, Role::kBias);
  }
  AddSpec(out, StackFinalNormName(stack_prefix, "weight"), {d},
          Role::kNormWeight);
  AddSpec(out, StackFinalNormName(stack_prefix, "bias"), {d}, Role::kNormBias);
  return out;
}

std::vector<CheckpointTensorSpec> CheckpointLayout(const ModelConfig& config) {
  const int64_t v = config.vocab_size;
  std::vector<CheckpointTensorSpec> out;
  auto append = [&out](std::vector<CheckpointTensorSpec> specs) {
    for (CheckpointTensorSpec& spec : specs) out.push_back(std::move(spec));
  };
  if (config.kind == ModelKind::kVanilla) {
    const int64_t d = config.vanilla.hidden_size;
    AddSpec(out, std::string(kVanillaEmbedInName), {v, d}, Role::kEmbedding);
    append(StackLayout(kVanillaPrefix, config.vanilla));
    AddSpec(out, std::string(kVanillaEmbedOutName), {v, d}, Role::kEmbedding);
    return out;
  }
  const int64_t p = config.block_decoder.hidden_size;
  const int64_t h = config.token_decoder.hidden_size;
  const int64_t rh = int64_t{config.expansion_ratio} * h;
  AddSpec(out, std::string(kEmbedderName), {v, config.embedder_dim},
          Role::kEmbedding);
  AddSpec(out, std::string(kBlockEmbedInName), {v, p}, Role::kEmbedding,
          /*required=*/false);
  append(StackLayout(kBlockDecoderPrefix, config.block_decoder));
  AddSpec(out, std::string(kExpansionWeightName), {rh, p, 1}, Role::kMatrix);
  AddSpec(out, std::string(kExpansionBiasName), {rh}, Role::kBias);
  AddSpec(out, std::string(kTokenEmbedInName), {v, h}, Role::kEmbedding);
  append(StackLayout(kTokenDecoderPrefix, config.token_decoder));
  AddSpec(out, std::string(kTokenEmbedOutName), {v, h}, Role::kEmbedding);
  return out;
}

bool ShapeMatchesLayout(const CheckpointTensorSpec& spec,
                        absl::Span<const int64_t> shape) {
  if (shape.size() > spec.shape.size()) return false;
  for (size_t i = 0; i < spec.shape.size(); ++i) {
    if (i < shape.size() ? shape[i] != spec.shape[i] : spec.shape[i] != 1) {
      return false;
    }
  }
  return true;
}

bool IsIgnoredCheckpointBuffer(absl::string_view name) {
  absl::string_view rest;  // what follows "<stack prefix>."
  for (absl::string_view prefix :
       {kBlockDecoderPrefix, kTokenDecoderPrefix, kVanillaPrefix}) {
    if (absl::StartsWith(name, prefix) && name.size() > prefix.size() &&
        name[prefix.size()] == '.') {
      rest = name.substr(prefix.size() + 1);
    }
  }
  if (rest == "rotary_emb.inv_freq") return true;
  if (!absl::ConsumePrefix(&rest, "layers.")) return false;
  const size_t dot = rest.find('.');
  if (dot == 0 || dot == absl::string_view::npos ||
      !std::all_of(rest.begin(), rest.begin() + dot, absl::ascii_isdigit)) {
    return false;
  }
  rest.remove_prefix(dot + 1);
  return rest == "attention.bias" || rest == "attention.masked_bias" ||
         rest == "attention.rotary_emb.inv_freq";
}

SafetensorsOpenOptions CheckpointOpenOptions() {
  SafetensorsOpenOptions options;
  options.skip_unsupported_dtype = IsIgnoredCheckpointBuffer;
  return options;
}

std::string ShapeToString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace blockserve
