#include "tools/cli/service_flags.h"

namespace blockserve::cli {

services::ModelLoader MakeModelLoader(const ModelFlags& flags) {
  return [flags](const ModelLoadOptions& parts) -> absl::StatusOr<services::ServiceModel> {
    absl::StatusOr<LoadedModel> loaded = LoadModelFromFlags(flags, parts);
    if (!loaded.ok()) return loaded.status();
    services::ServiceModel model;
    model.backend = std::move(loaded->backend);
    model.model = std::move(loaded->model);
    return model;
  };
}

}  // namespace blockserve::cli
