// ServerRunner: the life of a Blockserve server process, shared by the
// gateway, the context service and the token worker.
//
//   ServerRunner::InstallStopSignals();      // first thing in main
//   ... load the model ...
//   ASSIGN_OR_RETURN(auto runner, ServerRunner::Start(options, {&service}, &state, &metrics));
//   ... warm up ...; runner->SetServing(true);
//   return runner->Wait(hooks);              // until SIGTERM / SIGINT
//
// Start() builds the gRPC server (callback services, the standard health
// service, server reflection, keepalive settings), binds --listen (port 0:
// a free port), serves /metrics, reports the chosen ports on stdout and in
// the --port-file, and sets health NOT_SERVING until SetServing(true).
// The health service also answers for kLivenessHealthService, SERVING from
// Start() until the server shuts down, loading and draining included: a
// liveness probe (Kubernetes) asks for it, a readiness probe for "".
//
// A signal thread waits for SIGTERM/SIGINT (StopSignals: the handler only
// writes to a pipe; the work happens on the thread). Wait() then drains: health NOT_SERVING,
// ServingState draining (new requests get UNAVAILABLE from their handlers), hooks.on_drain, then it
// waits until no request is in flight and hooks.idle() holds, at most
// --grace-period; then Server::Shutdown cancels what is left, hooks.stop
// stops the engine, and Wait() returns exit status 0.
//
// Thread-safe: SetServing() and RequestStop() may be called from any
// thread; Wait() from one.
#ifndef BLOCKSERVE_SERVICES_COMMON_SERVER_RUNNER_H_
#define BLOCKSERVE_SERVICES_COMMON_SERVER_RUNNER_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/serving_state.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace blockserve {
class ArgParser;
namespace metrics {
class MetricsExposer;
class MetricsRegistry;
}  // namespace metrics
}  // namespace blockserve

namespace blockserve::services {

// The flags every server shares.
// The health-service name that stays SERVING while the process is alive
// and its gRPC server answers (model loading and draining included).
inline constexpr char kLivenessHealthService[] = "blockserve.liveness";

struct ServerFlags {
  std::string listen = "127.0.0.1:0";
  int metrics_port = 0;  // 0: a free port; -1: no metrics endpoint
  std::string port_file;
  double grace_period_s = 30.0;

  void Register(ArgParser& parser);
};

struct ServerRunnerOptions {
  std::string role;  // "gateway", "context", "worker": logs and the stdout line
  ServerFlags flags;
};

class ServerRunner {
 public:
  struct Hooks {
    std::function<void()> on_drain;  // draining started (e.g. tell peers)
    std::function<bool()> idle;      // extra condition for "nothing in flight"
    std::function<void()> stop;      // after the server is shut down
  };

  // Installs the SIGTERM/SIGINT handler (StopSignals). Call first in main,
  // so a signal during start-up is not fatal.
  static void InstallStopSignals();

  // `services` and `state` must outlive the runner; `metrics` may be null
  // (no /metrics endpoint).
  static absl::StatusOr<std::unique_ptr<ServerRunner>> Start(
      const ServerRunnerOptions& options, const std::vector<grpc::Service*>& services,
      ServingState* state, const metrics::MetricsRegistry* metrics);
  ~ServerRunner();

  int port() const { return port_; }
  const std::string& address() const { return address_; }  // HOST:PORT
  std::string metrics_url() const;                         // "" when none

  // Health: SERVING or NOT_SERVING for every service and for "".
  void SetServing(bool serving);
  // As if SIGTERM had arrived.
  void RequestStop();
  bool stop_requested();
  // Blocks until a stop is requested, drains, shuts down; returns 0.
  int Wait(const Hooks& hooks);

  grpc::Server* server() { return server_.get(); }

 private:
  ServerRunner(ServerRunnerOptions options, ServingState* state);
  void SignalLoop();
  absl::Status WritePortFile() const;

  ServerRunnerOptions options_;
  ServingState* state_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<metrics::MetricsExposer> exposer_;
  std::string host_;
  std::string address_;
  int port_ = 0;

  std::mutex mutex_;
  std::condition_variable stop_requested_cv_;
  bool stop_requested_ = false;  // guarded by mutex_
  bool exiting_ = false;         // guarded by mutex_
  std::thread signal_thread_;
};

// Splits "HOST:PORT" ("[::1]:0" for IPv6). INVALID_ARGUMENT naming the flag.
absl::Status SplitHostPort(const std::string& address, std::string* host, int* port);

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_COMMON_SERVER_RUNNER_H_
