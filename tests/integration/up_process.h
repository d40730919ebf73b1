// UpProcess: a whole stack started by `blockserve up` (its own process
// group; stopped with SIGTERM, then killed, with the object), with its
// --port-file read back: the gateway address, each service's metrics URL
// and pid, the worker list. For tests that run the stack the way a user
// does (scaling, Prometheus).
// Not thread-safe.
#ifndef BLOCKSERVE_TESTS_INTEGRATION_UP_PROCESS_H_
#define BLOCKSERVE_TESTS_INTEGRATION_UP_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tests/integration/stack_util.h"

namespace blockserve::testing {

class UpProcess {
 public:
  // Runs `blockserve up ARGS --port-file=...` and waits until the port
  // file appears (the stack is SERVING).
  static absl::StatusOr<std::unique_ptr<UpProcess>> Start(const std::vector<std::string>& args,
                                                          double timeout_s = 60);
  ~UpProcess();

  // The port file as it is now (`up` rewrites it when scaling).
  nlohmann::json State() const;
  const std::string& port_file() const { return port_file_; }
  std::string gateway() const;
  // Metrics URLs and pids of the services of one role, in start order.
  std::vector<std::string> MetricsUrls(const std::string& role) const;
  std::vector<pid_t> Pids(const std::string& role) const;
  std::vector<std::string> Workers() const;

  std::unique_ptr<v1::Generation::Stub> Client() const;
  ChildGuard& process() { return *process_; }

 private:
  UpProcess() = default;
  std::string port_file_;
  std::unique_ptr<ChildGuard> process_;
};

}  // namespace blockserve::testing

#endif  // BLOCKSERVE_TESTS_INTEGRATION_UP_PROCESS_H_
