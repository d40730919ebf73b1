// ChildProcess: a blockserve subprocess started by `blockserve up`.
//
// Spawn() forks and execs the given binary with its arguments in the
// process group `group` (0: a new group led by the child), with stdout sent
// to /dev/null (stderr, where the services log, is inherited), all signals
// unblocked, and PR_SET_PDEATHSIG so that the child gets SIGTERM if `up`
// dies without stopping it: no orphans. Not thread-safe; for the CLI's main
// thread.
#ifndef BLOCKSERVE_TOOLS_CLI_CHILD_PROCESS_H_
#define BLOCKSERVE_TOOLS_CLI_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace blockserve::cli {

struct ChildProcess {
  std::string name;  // "worker-0"
  pid_t pid = -1;
  bool exited = false;
  int wait_status = 0;  // as from waitpid, once exited

  // Reaps the child if it has exited (non-blocking). True when it has.
  bool Poll();
  // Sends `signal` if it is still running.
  void Signal(int signal) const;
  // Waits up to `timeout_s` for it to exit; true when it has.
  bool WaitFor(double timeout_s);
  // "exited with status 1", "was killed by signal 9".
  std::string Describe() const;
};

absl::StatusOr<ChildProcess> SpawnChild(const std::string& name, const std::string& binary,
                                        const std::vector<std::string>& args, pid_t group);

// The path of the running executable (/proc/self/exe resolved).
std::string SelfExecutable();

}  // namespace blockserve::cli

#endif  // BLOCKSERVE_TOOLS_CLI_CHILD_PROCESS_H_
