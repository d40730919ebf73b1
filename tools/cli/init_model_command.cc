// TRANSIENT PLACEHOLDER (development only): replaced by the real command.
#include <cstdio>
#include "tools/cli/commands.h"
namespace blockserve::cli {
int InitModelCommand(const Args&) { std::fprintf(stderr, "not built yet\n"); return 1; }
}  // namespace blockserve::cli
