// blockserve worker: a token worker (the local stage) as a gRPC server.
#include <cstdio>

#include "services/common/server_runner.h"
#include "services/token_worker/worker_server.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"
#include "tools/cli/service_flags.h"

namespace blockserve::cli {

int WorkerCommand(const Args& args) {
  services::ServerRunner::InstallStopSignals();  // first: a signal during start-up must not kill us
  ModelFlags model_flags;
  services::WorkerServerOptions options;
  ArgParser parser("blockserve worker",
                   "Runs a token worker: decodes the blocks that context services stream to it "
                   "(continuous batching over every block it holds). Stateless: scale it "
                   "horizontally. SIGTERM drains it.");
  model_flags.Register(parser);
  options.server.Register(parser);
  parser.AddInt("max-active-blocks", &options.engine.batcher.max_active_blocks,
                "blocks decoded together in one forward pass at most");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  if (options.engine.batcher.max_active_blocks < 1) {
    std::fprintf(stderr, "blockserve worker: --max-active-blocks must be at least 1\n");
    return 2;
  }
  return services::RunTokenWorker(options, MakeModelLoader(model_flags));
}

}  // namespace blockserve::cli
