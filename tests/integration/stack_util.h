// Integration-test helpers: real blockserve processes on 127.0.0.1 with
// ephemeral ports, a client for the gateway, and Prometheus scraping.
//
// Every ServiceProcess runs in its own process group and is killed (the
// whole group, SIGKILL) and reaped when the object goes away, so a failing
// test never leaves processes behind. Not thread-safe except Generate().
#ifndef BLOCKSERVE_TESTS_INTEGRATION_STACK_UTIL_H_
#define BLOCKSERVE_TESTS_INTEGRATION_STACK_UTIL_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "blockserve/v1/generation.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace blockserve::testing {

std::string TestModelDir(const std::string& name);

// A `blockserve ROLE ...` process.
class ServiceProcess {
 public:
  // Adds --listen=127.0.0.1:0 --metrics-port=0 --port-file=...; waits for
  // the port file and, when `wait_serving`, for health SERVING.
  static absl::StatusOr<std::unique_ptr<ServiceProcess>> Start(const std::string& role,
                                                               const std::vector<std::string>& args,
                                                               bool wait_serving = true,
                                                               double timeout_s = 30);
  ~ServiceProcess();

  const std::string& address() const { return address_; }
  const std::string& metrics_url() const { return metrics_url_; }
  pid_t pid() const { return pid_; }

  void Signal(int signal) const;
  // The exit code once it exits within `timeout_s` (-1 if killed by a
  // signal); nullopt if still running.
  std::optional<int> WaitExit(double timeout_s);
  bool running();

  // One scrape of its /metrics endpoint.
  std::string ScrapeMetrics() const;
  // The value of one series, e.g. `blockserve_context_active_sessions` or
  // `blockserve_worker_blocks_total{outcome="ok"}` (labels in exposition
  // order); NaN when absent.
  double Metric(const std::string& series) const;

 private:
  ServiceProcess() = default;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = 0;
  std::string port_file_;
  std::string address_;
  std::string metrics_url_;
};

// Spawns `blockserve ARGS...` (not a service: e.g. `up` or `generate`) in
// its own process group, stdout to `stdout_file` if given. Killed and
// reaped with the object.
class ChildGuard {
 public:
  explicit ChildGuard(const std::vector<std::string>& args, const std::string& stdout_file = "");
  ~ChildGuard();
  pid_t pid() const { return pid_; }
  void Signal(int signal) const;
  std::optional<int> WaitExit(double timeout_s);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = 0;
};

// Workers, context replicas and a gateway wired together.
struct Stack {
  std::vector<std::unique_ptr<ServiceProcess>> workers;
  std::vector<std::unique_ptr<ServiceProcess>> contexts;
  std::unique_ptr<ServiceProcess> gateway;

  static absl::StatusOr<std::unique_ptr<Stack>> Start(
      const std::string& model_dir, int workers, int contexts,
      const std::vector<std::string>& gateway_args = {},
      const std::vector<std::string>& context_args = {},
      const std::vector<std::string>& worker_args = {});
  std::unique_ptr<v1::Generation::Stub> Client() const;
};

struct GenerateResult {
  grpc::Status status;
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::string text;
  bool has_start = false;
  uint64_t start_seed = 0;
  v1::GenerationEnd end;
  int messages = 0;
};

// One Generate call to the end (deadline `timeout_s`). Thread-safe.
GenerateResult Generate(v1::Generation::Stub& stub, const v1::GenerateRequest& request,
                        double timeout_s = 60);

v1::GenerateRequest TokenRequest(const std::vector<int32_t>& prompt, int max_new_tokens);

// Polls `predicate` until true or the timeout passes.
template <typename Predicate>
bool Eventually(Predicate predicate, double timeout_s = 10);

// The services the server's reflection lists (grpc.reflection.v1alpha),
// from a raw call: the test does not link a reflection client.
absl::StatusOr<std::string> ReflectionListServicesRaw(const std::string& address);

// Health Check("") status name: "SERVING", "NOT_SERVING", "UNREACHABLE".
std::string HealthStatus(const std::string& address);

// GET http://HOST:PORT/PATH (IPv4, HTTP/1.0); the body, or "" on failure.
std::string HttpGet(const std::string& url);

// The value of one series in a Prometheus text exposition (see
// ServiceProcess::Metric); NaN when absent.
double MetricValue(const std::string& exposition, const std::string& series);

}  // namespace blockserve::testing

#include <chrono>
#include <thread>

namespace blockserve::testing {

template <typename Predicate>
bool Eventually(Predicate predicate, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6));
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

}  // namespace blockserve::testing

#endif  // BLOCKSERVE_TESTS_INTEGRATION_STACK_UTIL_H_
