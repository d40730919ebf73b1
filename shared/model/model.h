// Model: a loaded language model (a Block Transformer or a vanilla GPT-NeoX)
// with its weights resident on a backend.
//
// Load() reads DIR/model.safetensors and the optional DIR/config.json,
// infers and validates the configuration, and uploads the parts asked for:
// the context service needs only the block decoder, a token worker only the
// token decoder. The Model does not own the backend, which must outlive it.
// Immutable after Load(); see each part for threading.
#ifndef BLOCKSERVE_SHARED_MODEL_MODEL_H_
#define BLOCKSERVE_SHARED_MODEL_MODEL_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "shared/model/block_decoder.h"
#include "shared/model/model_config.h"
#include "shared/model/token_decoder.h"
#include "shared/model/vanilla_model.h"

namespace blockserve {

struct ModelLoadOptions {
  // Storage type of weight matrices and embedding tables on the backend
  // (vectors are always F32). Must be one the backend supports.
  DType weight_dtype = DType::kF32;
  // Which parts of a Block Transformer to load (ignored for vanilla models).
  bool load_block_decoder = true;
  bool load_token_decoder = true;
};

class Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& directory,
                                                     Backend& backend,
                                                     const ModelLoadOptions& options = {});

  const ModelConfig& config() const { return config_; }
  bool is_block() const { return config_.kind == ModelKind::kBlock; }
  Backend& backend() const { return *backend_; }
  const std::string& directory() const { return directory_; }

  // Null when the part was not loaded or does not exist for this kind.
  const BlockDecoder* block_decoder() const { return block_decoder_ ? &*block_decoder_ : nullptr; }
  const TokenDecoder* token_decoder() const { return token_decoder_ ? &*token_decoder_ : nullptr; }
  const VanillaModel* vanilla() const { return vanilla_ ? &*vanilla_ : nullptr; }

 private:
  Model() = default;

  ModelConfig config_;
  Backend* backend_ = nullptr;
  std::string directory_;
  std::optional<BlockDecoder> block_decoder_;
  std::optional<TokenDecoder> token_decoder_;
  std::optional<VanillaModel> vanilla_;
};

// Reads DIR/config.json if present (nullopt if absent; an error if unreadable
// or not a JSON object), and infers the configuration of DIR/model.safetensors.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& directory);

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_MODEL_MODEL_H_
