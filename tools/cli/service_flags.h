// Helpers shared by the service subcommands (gateway, context, worker):
// a ModelLoader built from the --model/--device/--threads/--weight-dtype
// flags. Not thread-safe at parse time; the loader may run on any thread.
#ifndef BLOCKSERVE_TOOLS_CLI_SERVICE_FLAGS_H_
#define BLOCKSERVE_TOOLS_CLI_SERVICE_FLAGS_H_

#include "services/common/service_model.h"
#include "tools/cli/cli_common.h"

namespace blockserve::cli {

// Loads the model named by `flags` (the parts asked for) when called.
services::ModelLoader MakeModelLoader(const ModelFlags& flags);

}  // namespace blockserve::cli

#endif  // BLOCKSERVE_TOOLS_CLI_SERVICE_FLAGS_H_
