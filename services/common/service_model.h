// ServiceModel: a model loaded on its backend, as a service holds it, and
// the loader callback a service is started with (the CLI supplies one built
// from its --model/--device/--threads/--weight-dtype flags). Services load
// the model after their server is up, so health reports NOT_SERVING while
// it loads.
//
// Plain value types; the Model refers to the Backend, so keep them together.
#ifndef BLOCKSERVE_SERVICES_COMMON_SERVICE_MODEL_H_
#define BLOCKSERVE_SERVICES_COMMON_SERVICE_MODEL_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "shared/model/model.h"

namespace blockserve::services {

struct ServiceModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;  // destroyed before the backend
  ~ServiceModel() { model.reset(); }
  ServiceModel() = default;
  ServiceModel(ServiceModel&&) = default;
  ServiceModel& operator=(ServiceModel&&) = default;
};

// Loads the parts named in `parts` (load_block_decoder / load_token_decoder).
using ModelLoader = std::function<absl::StatusOr<ServiceModel>(const ModelLoadOptions& parts)>;

// The parts each service needs.
inline ModelLoadOptions BlockDecoderOnly() {
  ModelLoadOptions parts;
  parts.load_token_decoder = false;
  return parts;
}
inline ModelLoadOptions TokenDecoderOnly() {
  ModelLoadOptions parts;
  parts.load_block_decoder = false;
  return parts;
}

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_COMMON_SERVICE_MODEL_H_
