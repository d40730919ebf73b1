#include "shared/model/model.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "shared/common/status_macros.h"
#include "shared/model/checkpoint_layout.h"
#include "shared/weights/safetensors.h"

namespace blockserve {
namespace {

absl::StatusOr<std::optional<nlohmann::json>> ReadConfigJson(const std::string& directory) {
  const std::filesystem::path path = std::filesystem::path(directory) / "config.json";
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return std::optional<nlohmann::json>();
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), " is not a JSON object"));
  }
  return std::optional<nlohmann::json>(std::move(json));
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> OpenCheckpoint(const std::string& directory) {
  const std::filesystem::path path = std::filesystem::path(directory) / "model.safetensors";
  std::error_code error;
  if (!std::filesystem::is_directory(directory, error)) {
    return absl::NotFoundError(absl::StrCat("model directory ", directory, " does not exist"));
  }
  if (!std::filesystem::exists(path, error)) {
    return absl::NotFoundError(absl::StrCat("no model.safetensors in ", directory));
  }
  return SafetensorsFile::Open(path.string(), CheckpointOpenOptions());
}

}  // namespace

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& directory) {
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, OpenCheckpoint(directory));
  ASSIGN_OR_RETURN(std::optional<nlohmann::json> json, ReadConfigJson(directory));
  return InferModelConfig(*file, json);
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& directory,
                                                   Backend& backend,
                                                   const ModelLoadOptions& options) {
  if (!backend.SupportsWeightType(options.weight_dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("backend ", backend.Describe(),
                                                   " cannot hold weights in ",
                                                   DTypeName(options.weight_dtype)));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, OpenCheckpoint(directory));
  ASSIGN_OR_RETURN(std::optional<nlohmann::json> json, ReadConfigJson(directory));
  ASSIGN_OR_RETURN(ModelConfig config, InferModelConfig(*file, json));
  RETURN_IF_ERROR(config.Validate());

  auto model = std::unique_ptr<Model>(new Model());
  model->config_ = config;
  model->backend_ = &backend;
  model->directory_ = directory;
  const DType dtype = options.weight_dtype;
  if (config.kind == ModelKind::kBlock) {
    if (options.load_block_decoder) {
      ASSIGN_OR_RETURN(model->block_decoder_, BlockDecoder::Load(backend, *file, config, dtype));
    }
    if (options.load_token_decoder) {
      ASSIGN_OR_RETURN(model->token_decoder_, TokenDecoder::Load(backend, *file, config, dtype));
    }
  } else {
    ASSIGN_OR_RETURN(model->vanilla_, VanillaModel::Load(backend, *file, config, dtype));
  }
  RETURN_IF_ERROR(backend.Synchronize());
  return model;
}

}  // namespace blockserve
