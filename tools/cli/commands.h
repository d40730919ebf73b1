// The subcommands of the blockserve tool. Each takes the arguments after its
// name, prints its own --help, writes results to stdout and errors to stderr,
// and returns the process exit status (0 on success, 1 on failure, 2 on a
// usage error).
#ifndef BLOCKSERVE_TOOLS_CLI_COMMANDS_H_
#define BLOCKSERVE_TOOLS_CLI_COMMANDS_H_

#include <string>
#include <vector>

namespace blockserve::cli {

using Args = std::vector<std::string>;

int InitModelCommand(const Args& args);
int ScoreCommand(const Args& args);
int RunCommand(const Args& args);
int TokenizeCommand(const Args& args);
int BenchCommand(const Args& args);
// The gRPC services and the local stack (services/, docs/services.md).
int GatewayCommand(const Args& args);
int ContextCommand(const Args& args);
int WorkerCommand(const Args& args);
int UpCommand(const Args& args);
int GenerateCommand(const Args& args);
int ScaleCommand(const Args& args);
int ContextAdminCommand(const Args& args);

}  // namespace blockserve::cli

#endif  // BLOCKSERVE_TOOLS_CLI_COMMANDS_H_
