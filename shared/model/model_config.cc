#include "shared/model/model_config.h"

#include <climits>
#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "shared/common/status_macros.h"
#include "shared/model/checkpoint_layout.h"
#include "shared/weights/safetensors.h"

namespace blockserve {
namespace {

using nlohmann::json;

constexpr absl::string_view kBlockModelType = "block_transformer";
constexpr absl::string_view kVanillaModelType = "gpt_neox";

// ---------------------------------------------------------------------------
// Validation and serialization.

// `scope` prefixes the config.json key names in messages ("block_decoder.").
absl::Status ValidateStack(const NeoxStackConfig& s, absl::string_view scope) {
  auto invalid = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (s.hidden_size <= 0) {
    return invalid(scope, "hidden_size ", s.hidden_size, " must be positive");
  }
  if (s.num_layers <= 0) {
    return invalid(scope, "num_hidden_layers ", s.num_layers,
                   " must be at least 1");
  }
  if (s.num_heads <= 0 || s.hidden_size % s.num_heads != 0) {
    return invalid(scope, "num_attention_heads ", s.num_heads,
                   " does not divide ", scope, "hidden_size ", s.hidden_size);
  }
  if (s.head_dim != s.hidden_size / s.num_heads) {
    return invalid(scope, "head_dim ", s.head_dim,
                   " is not hidden_size / num_attention_heads = ",
                   s.hidden_size / s.num_heads);
  }
  if (s.intermediate_size <= 0) {
    return invalid(scope, "intermediate_size ", s.intermediate_size,
                   " must be positive");
  }
  if (!(s.rotary_pct >= 0.0 && s.rotary_pct <= 1.0)) {
    return invalid(scope, "rotary_pct ", s.rotary_pct, " must be in [0, 1]");
  }
  const int rotary = RotaryDims(s.head_dim, s.rotary_pct);
  if (s.rotary_dims != rotary) {
    return invalid(scope, "rotary dims ", s.rotary_dims,
                   " are not int(head_dim * rotary_pct) = ", rotary);
  }
  if (rotary % 2 != 0) {
    return invalid(scope, "rotary_pct ", s.rotary_pct, " gives int(head_dim ",
                   s.head_dim, " * rotary_pct) = ", rotary,
                   " rotary dims, which must be even");
  }
  if (!(s.rotary_base > 0.0 && std::isfinite(s.rotary_base))) {
    return invalid(scope, "rotary_emb_base ", s.rotary_base,
                   " must be positive");
  }
  if (!(s.layer_norm_eps > 0.0 && std::isfinite(s.layer_norm_eps))) {
    return invalid(scope, "layer_norm_eps ", s.layer_norm_eps,
                   " must be positive");
  }
  return absl::OkStatus();
}

int64_t StackParameters(const NeoxStackConfig& s) {
  const int64_t d = s.hidden_size;
  const int64_t inner = s.intermediate_size;
  const int64_t per_layer = 2 * 2 * d            // two LayerNorms
                            + 3 * d * d + 3 * d  // query_key_value
                            + d * d + d          // attention.dense
                            + inner * d + inner  // dense_h_to_4h
                            + d * inner + d;     // dense_4h_to_h
  return s.num_layers * per_layer + 2 * d;       // + final LayerNorm
}

json StackToJson(const NeoxStackConfig& s) {
  return {{"hidden_size", s.hidden_size},
          {"num_hidden_layers", s.num_layers},
          {"num_attention_heads", s.num_heads},
          {"intermediate_size", s.intermediate_size},
          {"rotary_pct", s.rotary_pct},
          {"rotary_emb_base", s.rotary_base},
          {"layer_norm_eps", s.layer_norm_eps},
          {"use_parallel_residual", s.parallel_residual}};
}

// ---------------------------------------------------------------------------
// config.json access.

// One JSON object of config.json with typed, optional keys. A key set to
// null counts as absent (Hugging Face writes null for unset options).
// Errors name the key with its scope: "config.json: block_decoder.hidden_size
// ...".
class ConfigObject {
 public:
  ConfigObject(const json* object, std::string scope)
      : object_(object), scope_(std::move(scope)) {}

  std::string KeyName(absl::string_view key) const {
    return absl::StrCat(scope_, key);
  }

  const json* Get(absl::string_view key) const {
    if (object_ == nullptr) return nullptr;
    auto it = object_->find(std::string(key));
    return it == object_->end() || it->is_null() ? nullptr : &*it;
  }

  template <typename... Parts>
  absl::Status Error(absl::string_view key, const Parts&... parts) const {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: ", KeyName(key), " ", parts...));
  }

  // A nested object (absent: an empty scope).
  absl::StatusOr<ConfigObject> Child(absl::string_view key) const {
    const json* child = Get(key);
    if (child != nullptr && !child->is_object()) {
      return Error(key, "must be a JSON object");
    }
    return ConfigObject(child, absl::StrCat(scope_, key, "."));
  }

  absl::Status Read(absl::string_view key, std::optional<int>* out) const {
    const json* value = Get(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_number_integer() ||
        (value->is_number_unsigned() ? value->get<uint64_t>() > INT_MAX
                                     : value->get<int64_t>() < INT_MIN ||
                                           value->get<int64_t>() > INT_MAX)) {
      return Error(key, "must be an integer, got ", value->dump());
    }
    *out = value->get<int>();
    return absl::OkStatus();
  }
  absl::Status Read(absl::string_view key, std::optional<double>* out) const {
    const json* value = Get(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_number()) {
      return Error(key, "must be a number, got ", value->dump());
    }
    *out = value->get<double>();
    return absl::OkStatus();
  }
  absl::Status Read(absl::string_view key, std::optional<bool>* out) const {
    const json* value = Get(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_boolean()) {
      return Error(key, "must be true or false, got ", value->dump());
    }
    *out = value->get<bool>();
    return absl::OkStatus();
  }
  absl::Status Read(absl::string_view key,
                    std::optional<std::string>* out) const {
    const json* value = Get(key);
    if (value == nullptr) return absl::OkStatus();
    if (!value->is_string()) {
      return Error(key, "must be a string, got ", value->dump());
    }
    *out = value->get<std::string>();
    return absl::OkStatus();
  }

  // A key with a newer Hugging Face spelling; both given must agree.
  absl::Status ReadAliased(absl::string_view key, absl::string_view alias,
                           std::optional<double>* out) const {
    std::optional<double> by_alias;
    RETURN_IF_ERROR(Read(key, out));
    RETURN_IF_ERROR(Read(alias, &by_alias));
    if (out->has_value() && by_alias.has_value() && **out != *by_alias) {
      return Error(key, **out, " contradicts ", KeyName(alias), " ", *by_alias);
    }
    if (!out->has_value()) *out = by_alias;
    return absl::OkStatus();
  }

  // Keys of this object that are not in `known`.
  std::vector<std::string> UnknownKeys(
      const std::set<std::string, std::less<>>& known) const {
    std::vector<std::string> unknown;
    if (object_ == nullptr) return unknown;
    for (const auto& [key, value] : object_->items()) {
      if (!known.contains(key)) unknown.push_back(key);
    }
    return unknown;
  }

 private:
  const json* object_;
  std::string scope_;
};

// The stack keys of config.json (Hugging Face GPT-NeoX spelling).
struct StackKeys {
  std::optional<int> hidden_size;
  std::optional<int> num_layers;
  std::optional<int> num_heads;
  std::optional<int> intermediate_size;
  std::optional<double> rotary_pct;
  std::optional<double> rotary_base;
  std::optional<double> layer_norm_eps;
  std::optional<bool> parallel_residual;
};

const std::set<std::string, std::less<>>& KnownStackKeys() {
  static const auto* keys = new std::set<std::string, std::less<>>{
      "hidden_size",           "num_hidden_layers", "num_attention_heads",
      "intermediate_size",     "rotary_pct",        "partial_rotary_factor",
      "rotary_emb_base",       "rope_theta",        "layer_norm_eps",
      "use_parallel_residual", "hidden_act",        "rope_scaling",
      "attention_bias"};
  return *keys;
}

// Reads the stack keys and rejects settings that would change the math in
// ways the engine does not implement.
absl::StatusOr<StackKeys> ReadStackKeys(const ConfigObject& object) {
  StackKeys keys;
  RETURN_IF_ERROR(object.Read("hidden_size", &keys.hidden_size));
  RETURN_IF_ERROR(object.Read("num_hidden_layers", &keys.num_layers));
  RETURN_IF_ERROR(object.Read("num_attention_heads", &keys.num_heads));
  RETURN_IF_ERROR(object.Read("intermediate_size", &keys.intermediate_size));
  RETURN_IF_ERROR(object.ReadAliased("rotary_pct", "partial_rotary_factor",
                                     &keys.rotary_pct));
  RETURN_IF_ERROR(
      object.ReadAliased("rotary_emb_base", "rope_theta", &keys.rotary_base));
  RETURN_IF_ERROR(object.Read("layer_norm_eps", &keys.layer_norm_eps));
  RETURN_IF_ERROR(
      object.Read("use_parallel_residual", &keys.parallel_residual));

  std::optional<std::string> activation;
  RETURN_IF_ERROR(object.Read("hidden_act", &activation));
  if (activation.has_value() && *activation != "gelu") {
    return object.Error(
        "hidden_act", "'", *activation,
        "' is not supported (only \"gelu\", the exact erf GELU)");
  }
  if (object.Get("rope_scaling") != nullptr) {
    return object.Error("rope_scaling", object.Get("rope_scaling")->dump(),
                        " is not supported (only null)");
  }
  std::optional<bool> attention_bias;
  RETURN_IF_ERROR(object.Read("attention_bias", &attention_bias));
  if (attention_bias == false) {
    return object.Error("attention_bias",
                        "false is not supported (attention query_key_value and "
                        "dense need biases)");
  }
  return keys;
}

absl::Status CheckModelType(const ConfigObject& top, ModelKind kind) {
  std::optional<std::string> model_type;
  RETURN_IF_ERROR(top.Read("model_type", &model_type));
  const absl::string_view expected =
      kind == ModelKind::kBlock ? kBlockModelType : kVanillaModelType;
  if (model_type.has_value() && *model_type != expected) {
    return top.Error("model_type", "'", *model_type, "' does not match the ",
                     ModelKindName(kind), " checkpoint (expected '", expected,
                     "')");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Checkpoint inspection.

absl::Status FileError(const SafetensorsFile& file, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(file.path(), ": ", message));
}

// The shape of a tensor that must exist with one of the given ranks.
absl::StatusOr<std::vector<int64_t>> TensorShape(const SafetensorsFile& file,
                                                 absl::string_view name,
                                                 size_t min_rank,
                                                 size_t max_rank) {
  const SafetensorsTensor* tensor = file.Find(name);
  if (tensor == nullptr) {
    return FileError(file, absl::StrCat("missing tensor ", name));
  }
  if (tensor->shape.size() < min_rank || tensor->shape.size() > max_rank) {
    return FileError(
        file, absl::StrCat(
                  "tensor ", name, " has shape ", ShapeToString(tensor->shape),
                  ", expected rank ", min_rank,
                  min_rank == max_rank ? "" : absl::StrCat(" or ", max_rank)));
  }
  for (int64_t d : tensor->shape) {
    if (d > INT_MAX) {
      return FileError(
          file, absl::StrCat("tensor ", name, " has shape ",
                             ShapeToString(tensor->shape), ", too large"));
    }
  }
  return tensor->shape;
}

// Number of layers of a stack: indices N of "<prefix>.layers.N.*" must be
// 0..n-1, n >= 1.
absl::StatusOr<int> CountLayers(const SafetensorsFile& file,
                                absl::string_view prefix) {
  const std::string head = absl::StrCat(prefix, ".layers.");
  std::set<int> layers;
  for (const SafetensorsTensor& tensor : file.tensors()) {
    absl::string_view rest = tensor.name;
    if (!absl::ConsumePrefix(&rest, head) ||
        IsIgnoredCheckpointBuffer(tensor.name)) {
      continue;
    }
    const absl::string_view digits = rest.substr(0, rest.find('.'));
    int index;
    // Anything else under layers. is reported as an unexpected tensor later.
    if (absl::SimpleAtoi(digits, &index) && index >= 0 &&
        absl::StrCat(index) == digits) {
      layers.insert(index);
    }
  }
  if (layers.empty()) {
    return FileError(file, absl::StrCat("no tensors ", head, "N.*: the stack ",
                                        prefix, " needs at least one layer"));
  }
  const int count = *layers.rbegin() + 1;
  for (int i = 0; i < count; ++i) {
    if (!layers.contains(i)) {
      return FileError(
          file,
          absl::StrCat("stack ", prefix, " has tensors for layer ", count - 1,
                       " but none for layer ", i, " (e.g. missing tensor ",
                       StackTensorName(prefix, i, kInputNormWeight), ")"));
    }
  }
  return count;
}

// A config.json size that must equal what a tensor's shape gives.
absl::Status CheckSizeKey(const ConfigObject& keys, absl::string_view key,
                          const std::optional<int>& configured,
                          int64_t inferred, const SafetensorsFile& file,
                          absl::string_view tensor_name) {
  if (!configured.has_value() || *configured == inferred) {
    return absl::OkStatus();
  }
  const SafetensorsTensor* tensor = file.Find(tensor_name);
  return keys.Error(key, *configured, " contradicts ", file.path(), ": tensor ",
                    tensor_name, " has shape ", ShapeToString(tensor->shape),
                    ", which gives ", inferred);
}

absl::StatusOr<NeoxStackConfig> InferStack(const SafetensorsFile& file,
                                           absl::string_view prefix,
                                           const StackKeys& keys,
                                           const ConfigObject& object) {
  NeoxStackConfig stack;
  ASSIGN_OR_RETURN(stack.num_layers, CountLayers(file, prefix));
  if (keys.num_layers.has_value() && *keys.num_layers != stack.num_layers) {
    return object.Error("num_hidden_layers", *keys.num_layers, " contradicts ",
                        file.path(), ": it has ", stack.num_layers, " layers (",
                        prefix, ".layers.0 .. ", stack.num_layers - 1, ")");
  }
  const std::string norm_name = StackTensorName(prefix, 0, kInputNormWeight);
  ASSIGN_OR_RETURN(std::vector<int64_t> norm_shape,
                   TensorShape(file, norm_name, 1, 1));
  stack.hidden_size = static_cast<int>(norm_shape[0]);
  RETURN_IF_ERROR(CheckSizeKey(object, "hidden_size", keys.hidden_size,
                               stack.hidden_size, file, norm_name));

  const std::string up_name = StackTensorName(prefix, 0, kMlpUpWeight);
  ASSIGN_OR_RETURN(std::vector<int64_t> up_shape,
                   TensorShape(file, up_name, 2, 2));
  stack.intermediate_size = static_cast<int>(up_shape[0]);
  RETURN_IF_ERROR(CheckSizeKey(object, "intermediate_size",
                               keys.intermediate_size, stack.intermediate_size,
                               file, up_name));

  if (keys.num_heads.has_value()) {
    stack.num_heads = *keys.num_heads;
    if (stack.num_heads <= 0 || stack.hidden_size % stack.num_heads != 0) {
      return object.Error("num_attention_heads", stack.num_heads,
                          " does not divide the hidden size ",
                          stack.hidden_size, " of ", norm_name);
    }
  } else {
    const int head_dim = DefaultHeadDim(stack.hidden_size);
    if (stack.hidden_size % head_dim != 0) {
      return FileError(
          file,
          absl::StrCat("cannot infer the head count of ", prefix,
                       ": hidden size ", stack.hidden_size,
                       " is not a multiple of the default head dim ", head_dim,
                       "; set ", object.KeyName("num_attention_heads"),
                       " in config.json"));
    }
    stack.num_heads = stack.hidden_size / head_dim;
  }
  stack.head_dim = stack.hidden_size / stack.num_heads;
  stack.rotary_pct = keys.rotary_pct.value_or(stack.rotary_pct);
  stack.rotary_dims = RotaryDims(stack.head_dim, stack.rotary_pct);
  stack.rotary_base = keys.rotary_base.value_or(stack.rotary_base);
  stack.layer_norm_eps = keys.layer_norm_eps.value_or(stack.layer_norm_eps);
  stack.parallel_residual =
      keys.parallel_residual.value_or(stack.parallel_residual);
  return stack;  // ranges are checked by ModelConfig::Validate()
}

// Every tensor of the layout present with its exact shape and a float dtype;
// nothing else but ignorable buffers.
absl::Status CheckAgainstLayout(const SafetensorsFile& file,
                                const ModelConfig& config) {
  const std::vector<CheckpointTensorSpec> layout = CheckpointLayout(config);
  std::set<absl::string_view> expected;
  for (const CheckpointTensorSpec& spec : layout) {
    expected.insert(spec.name);
    const SafetensorsTensor* tensor = file.Find(spec.name);
    if (tensor == nullptr) {
      if (!spec.required) continue;
      return FileError(
          file, absl::StrCat("missing tensor ", spec.name, " (expected shape ",
                             ShapeToString(spec.shape), ")"));
    }
    if (!ShapeMatchesLayout(spec, tensor->shape)) {
      return FileError(file,
                       absl::StrCat("tensor ", spec.name, " has shape ",
                                    ShapeToString(tensor->shape), ", expected ",
                                    ShapeToString(spec.shape)));
    }
    if (tensor->dtype != DType::kF32 && tensor->dtype != DType::kF16 &&
        tensor->dtype != DType::kBF16) {
      return FileError(file,
                       absl::StrCat("tensor ", spec.name, " has dtype ",
                                    DTypeName(tensor->dtype),
                                    "; weights must be F32, F16 or BF16"));
    }
  }
  auto check_known = [&](absl::string_view name) {
    if (expected.contains(name) || IsIgnoredCheckpointBuffer(name)) {
      return absl::OkStatus();
    }
    return FileError(
        file, absl::StrCat("unexpected tensor ", name, " (not part of the ",
                           ModelKindName(config.kind),
                           " checkpoint layout; see docs/model-format.md)"));
  };
  for (const SafetensorsTensor& tensor : file.tensors()) {
    RETURN_IF_ERROR(check_known(tensor.name));
  }
  for (const std::string& name : file.skipped()) {
    RETURN_IF_ERROR(check_known(name));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelKind> DetectKind(const SafetensorsFile& file) {
  std::string block_example, vanilla_example;
  auto classify = [&](const std::string& name) {
    if (absl::StartsWith(name, "embedder.") ||
        absl::StartsWith(name, "block_decoder.") ||
        absl::StartsWith(name, "token_decoder.")) {
      if (block_example.empty()) block_example = name;
    } else if (absl::StartsWith(name, "gpt_neox.") ||
               name == kVanillaEmbedOutName) {
      if (vanilla_example.empty()) vanilla_example = name;
    }
  };
  for (const SafetensorsTensor& tensor : file.tensors()) classify(tensor.name);
  for (const std::string& name : file.skipped()) classify(name);
  if (!block_example.empty() && !vanilla_example.empty()) {
    return FileError(
        file,
        absl::StrCat("mixes Block Transformer tensors (e.g. ", block_example,
                     ") with vanilla GPT-NeoX tensors (e.g. ", vanilla_example,
                     ")"));
  }
  if (!block_example.empty()) return ModelKind::kBlock;
  if (!vanilla_example.empty()) return ModelKind::kVanilla;
  return FileError(
      file,
      absl::StrCat(
          "is neither a Block Transformer checkpoint (embedder.*, "
          "block_decoder.*, token_decoder.*) nor a GPT-NeoX one (gpt_neox.*, "
          "embed_out.weight)",
          file.tensors().empty()
              ? ": it has no tensors"
              : absl::StrCat(": first tensor ", file.tensors()[0].name)));
}

// Keys common to both kinds: eos_token_id and max_sequence_length.
absl::Status ReadCommonKeys(const ConfigObject& top, ModelConfig& config) {
  std::optional<int> eos, max_length;
  RETURN_IF_ERROR(top.Read("eos_token_id", &eos));
  RETURN_IF_ERROR(top.Read("max_sequence_length", &max_length));
  config.eos_token_id = eos.value_or(config.eos_token_id);
  config.max_sequence_length = max_length.value_or(config.max_sequence_length);
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> InferBlock(const SafetensorsFile& file,
                                       const ConfigObject& top) {
  ModelConfig config;
  config.kind = ModelKind::kBlock;
  struct Stack {
    absl::string_view key;
    absl::string_view prefix;
    NeoxStackConfig* out;
  };
  for (const Stack& stack :
       {Stack{"block_decoder", kBlockDecoderPrefix, &config.block_decoder},
        Stack{"token_decoder", kTokenDecoderPrefix, &config.token_decoder}}) {
    ASSIGN_OR_RETURN(ConfigObject object, top.Child(stack.key));
    const std::vector<std::string> unknown =
        object.UnknownKeys(KnownStackKeys());
    if (!unknown.empty()) {
      return object.Error(unknown[0], "is not a known stack key (known: ",
                          absl::StrJoin(KnownStackKeys(), ", "), ")");
    }
    ASSIGN_OR_RETURN(StackKeys keys, ReadStackKeys(object));
    ASSIGN_OR_RETURN(*stack.out, InferStack(file, stack.prefix, keys, object));
  }

  // Embedder [V, P / L_B].
  ASSIGN_OR_RETURN(std::vector<int64_t> embedder,
                   TensorShape(file, kEmbedderName, 2, 2));
  const int p = config.block_decoder.hidden_size;
  if (embedder[1] == 0 || p % embedder[1] != 0) {
    return FileError(
        file, absl::StrCat("tensor ", kEmbedderName, " has shape ",
                           ShapeToString(embedder), ": its width ", embedder[1],
                           " does not divide the block decoder hidden size ", p,
                           ", so there is no whole block length"));
  }
  config.vocab_size = static_cast<int>(embedder[0]);
  config.embedder_dim = static_cast<int>(embedder[1]);
  config.block_length = p / config.embedder_dim;

  // Expansion [R * H, P, 1] (or [R * H, P]).
  ASSIGN_OR_RETURN(std::vector<int64_t> expansion,
                   TensorShape(file, kExpansionWeightName, 2, 3));
  const int h = config.token_decoder.hidden_size;
  if (expansion[0] == 0 || expansion[0] % h != 0) {
    return FileError(
        file,
        absl::StrCat(
            "tensor ", kExpansionWeightName, " has shape ",
            ShapeToString(expansion), ": its ", expansion[0],
            " rows are not a multiple of the token decoder hidden size ", h));
  }
  config.expansion_ratio = static_cast<int>(expansion[0] / h);

  std::optional<int> vocab, block_length, expansion_ratio;
  RETURN_IF_ERROR(top.Read("vocab_size", &vocab));
  RETURN_IF_ERROR(top.Read("block_length", &block_length));
  RETURN_IF_ERROR(top.Read("expansion_ratio", &expansion_ratio));
  RETURN_IF_ERROR(CheckSizeKey(top, "vocab_size", vocab, config.vocab_size,
                               file, kEmbedderName));
  RETURN_IF_ERROR(CheckSizeKey(top, "block_length", block_length,
                               config.block_length, file, kEmbedderName));
  RETURN_IF_ERROR(CheckSizeKey(top, "expansion_ratio", expansion_ratio,
                               config.expansion_ratio, file,
                               kExpansionWeightName));
  RETURN_IF_ERROR(ReadCommonKeys(top, config));
  RETURN_IF_ERROR(CheckAgainstLayout(file, config));
  return config;
}

absl::StatusOr<ModelConfig> InferVanilla(const SafetensorsFile& file,
                                         const ConfigObject& top) {
  ModelConfig config;
  config.kind = ModelKind::kVanilla;
  ASSIGN_OR_RETURN(StackKeys keys, ReadStackKeys(top));
  std::optional<bool> tied;
  RETURN_IF_ERROR(top.Read("tie_word_embeddings", &tied));
  if (tied == true) {
    return top.Error("tie_word_embeddings",
                     "true is not supported (the checkpoint must hold its own "
                     "embed_out.weight)");
  }
  ASSIGN_OR_RETURN(config.vanilla, InferStack(file, kVanillaPrefix, keys, top));

  ASSIGN_OR_RETURN(std::vector<int64_t> embed_in,
                   TensorShape(file, kVanillaEmbedInName, 2, 2));
  config.vocab_size = static_cast<int>(embed_in[0]);
  std::optional<int> vocab, max_positions;
  RETURN_IF_ERROR(top.Read("vocab_size", &vocab));
  RETURN_IF_ERROR(CheckSizeKey(top, "vocab_size", vocab, config.vocab_size,
                               file, kVanillaEmbedInName));
  RETURN_IF_ERROR(top.Read("max_position_embeddings", &max_positions));
  config.max_position_embeddings = max_positions.value_or(0);
  RETURN_IF_ERROR(ReadCommonKeys(top, config));
  RETURN_IF_ERROR(CheckAgainstLayout(file, config));
  return config;
}

}  // namespace

absl::string_view ModelKindName(ModelKind kind) {
  return kind == ModelKind::kBlock ? "block" : "vanilla";
}

int DefaultHeadDim(int hidden_size) {
  if (hidden_size <= 256) return 32;
  if (hidden_size <= 1536) return 64;
  return 128;
}

int RotaryDims(int head_dim, double rotary_pct) {
  return static_cast<int>(head_dim * rotary_pct);
}

NeoxStackConfig MakeNeoxStackConfig(int hidden_size, int num_layers,
                                    int num_heads, int intermediate_size) {
  NeoxStackConfig stack;
  stack.hidden_size = hidden_size;
  stack.num_layers = num_layers;
  stack.num_heads =
      num_heads > 0 ? num_heads : hidden_size / DefaultHeadDim(hidden_size);
  stack.head_dim = stack.num_heads > 0 ? hidden_size / stack.num_heads : 0;
  stack.intermediate_size =
      intermediate_size > 0 ? intermediate_size : 4 * hidden_size;
  stack.rotary_dims = RotaryDims(stack.head_dim, stack.rotary_pct);
  return stack;
}

int64_t ModelConfig::NonEmbeddingParameters() const {
  if (kind == ModelKind::kVanilla) return StackParameters(vanilla);
  return StackParameters(block_decoder) + StackParameters(token_decoder);
}

absl::Status ModelConfig::Validate() const {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (vocab_size <= 0) {
    return invalid("vocab_size ", vocab_size, " must be positive");
  }
  if (eos_token_id < 0 || eos_token_id >= vocab_size) {
    return invalid("eos_token_id ", eos_token_id,
                   " is outside the vocabulary [0, ", vocab_size, ")");
  }
  if (max_sequence_length < 0) {
    return invalid("max_sequence_length ", max_sequence_length,
                   " must not be negative");
  }
  if (kind == ModelKind::kVanilla) {
    if (max_position_embeddings < 0) {
      return invalid("max_position_embeddings ", max_position_embeddings,
                     " must not be negative");
    }
    return ValidateStack(vanilla, "");
  }
  RETURN_IF_ERROR(ValidateStack(block_decoder, "block_decoder."));
  RETURN_IF_ERROR(ValidateStack(token_decoder, "token_decoder."));
  if (block_length <= 0) {
    return invalid("block_length ", block_length, " must be positive");
  }
  if (expansion_ratio <= 0) {
    return invalid("expansion_ratio ", expansion_ratio, " must be positive");
  }
  if (int64_t{embedder_dim} * block_length != block_decoder.hidden_size) {
    return invalid("embedder dim ", embedder_dim, " * block_length ",
                   block_length, " is not block_decoder.hidden_size ",
                   block_decoder.hidden_size);
  }
  return absl::OkStatus();
}

nlohmann::json ModelConfig::ToJson() const {
  json out;
  if (kind == ModelKind::kVanilla) {
    out = StackToJson(vanilla);
    out["model_type"] = kVanillaModelType;
    out["architectures"] = {"GPTNeoXForCausalLM"};
    out["hidden_act"] = "gelu";
    out["tie_word_embeddings"] = false;
    if (max_position_embeddings > 0) {
      out["max_position_embeddings"] = max_position_embeddings;
    }
  } else {
    out["model_type"] = kBlockModelType;
    out["block_length"] = block_length;
    out["expansion_ratio"] = expansion_ratio;
    out["block_decoder"] = StackToJson(block_decoder);
    out["token_decoder"] = StackToJson(token_decoder);
  }
  out["vocab_size"] = vocab_size;
  out["eos_token_id"] = eos_token_id;
  if (max_sequence_length > 0) out["max_sequence_length"] = max_sequence_length;
  return out;
}

absl::StatusOr<ModelConfig> InferModelConfig(
    const SafetensorsFile& file,
    const std::optional<nlohmann::json>& config_json) {
  if (config_json.has_value() && !config_json->is_object()) {
    return absl::InvalidArgumentError("config.json: not a JSON object");
  }
  const ConfigObject top(config_json.has_value() ? &*config_json : nullptr, "");
  try {
    ASSIGN_OR_RETURN(ModelKind kind, DetectKind(file));
    RETURN_IF_ERROR(CheckModelType(top, kind));
    ASSIGN_OR_RETURN(ModelConfig config, kind == ModelKind::kBlock
                                             ? InferBlock(file, top)
                                             : InferVanilla(file, top));
    absl::Status valid = config.Validate();
    if (!valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.path(), config_json ? " with its config.json" : "",
                       ": ", valid.message()));
    }
    return config;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: ", e.what()));
  }
}

}  // namespace blockserve
