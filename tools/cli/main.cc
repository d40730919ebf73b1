// blockserve: the command-line entry point. Dispatches to one subcommand.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "tools/cli/commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(const blockserve::cli::Args&);
  const char* summary;
};

constexpr Command kCommands[] = {
    {"init-model", blockserve::cli::InitModelCommand,
     "write a random-weight model (paper presets or test presets)"},
    {"score", blockserve::cli::ScoreCommand, "log-probabilities and perplexity of a text"},
    {"run", blockserve::cli::RunCommand, "generate in-process (no services)"},
    {"tokenize", blockserve::cli::TokenizeCommand, "encode or decode with a tokenizer.json"},
    {"bench", blockserve::cli::BenchCommand, "throughput and latency benchmarks"},
    {"up", blockserve::cli::UpCommand,
     "start the gateway, context service(s) and token workers on this machine"},
    {"scale", blockserve::cli::ScaleCommand,
     "add or remove token workers of a running `up` (no restart, no failed request)"},
    {"generate", blockserve::cli::GenerateCommand, "generate through a running gateway"},
    {"gateway", blockserve::cli::GatewayCommand, "run the gateway (the public gRPC API)"},
    {"context", blockserve::cli::ContextCommand,
     "run a context service (embedder + block decoder)"},
    {"worker", blockserve::cli::WorkerCommand, "run a token worker (token decoder)"},
    {"context-admin", blockserve::cli::ContextAdminCommand,
     "list or set a context service's workers, announce its drain"},
};

void PrintUsage(FILE* out) {
  std::fprintf(out,
               "usage: blockserve COMMAND [options]\n\n"
               "Blockserve: an inference server for Block Transformer language models.\n\n"
               "commands:\n");
  for (const Command& command : kCommands) {
    std::fprintf(out, "  %-14s %s\n", command.name, command.summary);
  }
  std::fprintf(out, "\nRun 'blockserve COMMAND --help' for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  // absl::Mutex (inside gRPC) records every lock order in a global graph to
  // detect deadlocks when built without NDEBUG, as Debian's Abseil is: a
  // debugging aid that cost the gateway a few percent of its CPU under load.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (argc < 2) {
    PrintUsage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    PrintUsage(stdout);
    return 0;
  }
  for (const Command& command : kCommands) {
    if (name == command.name) {
      return command.run(blockserve::cli::Args(argv + 2, argv + argc));
    }
  }
  std::fprintf(stderr, "blockserve: unknown command '%s'\n\n", name.c_str());
  PrintUsage(stderr);
  return 2;
}
