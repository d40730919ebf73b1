#include "services/common/server_runner.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "nlohmann/json.hpp"
#include "services/common/stop_signals.h"
#include "shared/common/arg_parser.h"
#include "shared/common/logging.h"
#include "shared/common/status_macros.h"
#include "shared/metrics/metrics_exposer.h"

namespace blockserve::services {

void ServerFlags::Register(ArgParser& parser) {
  parser.AddString("listen", &listen, "gRPC address HOST:PORT (port 0: pick a free port)");
  parser.AddInt("metrics-port", &metrics_port,
                "port of the /metrics HTTP endpoint on the listen host (0: a free port, "
                "-1: none)");
  parser.AddString("port-file", &port_file,
                   "write the chosen ports here as JSON once listening (for scripts and tests)");
  parser.AddDouble("grace-period", &grace_period_s,
                   "seconds to let in-flight requests finish after SIGTERM");
}

absl::Status SplitHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen must be HOST:PORT, got '", address, "'"));
  }
  *host = address.substr(0, colon);
  if (!absl::SimpleAtoi(address.substr(colon + 1), port) || *port < 0 || *port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen has an invalid port in '", address, "'"));
  }
  return absl::OkStatus();
}

namespace {
// StopSignals code that ends the signal thread.
constexpr int kExitSignalThread = 200;
}  // namespace

void ServerRunner::InstallStopSignals() { StopSignals::Install(); }

ServerRunner::ServerRunner(ServerRunnerOptions options, ServingState* state)
    : options_(std::move(options)), state_(state) {}

absl::StatusOr<std::unique_ptr<ServerRunner>> ServerRunner::Start(
    const ServerRunnerOptions& options, const std::vector<grpc::Service*>& services,
    ServingState* state, const metrics::MetricsRegistry* metrics) {
  std::unique_ptr<ServerRunner> runner(new ServerRunner(options, state));
  int requested_port = 0;
  RETURN_IF_ERROR(SplitHostPort(options.flags.listen, &runner->host_, &requested_port));
  if (options.flags.grace_period_s < 0) {
    return absl::InvalidArgumentError("--grace-period must be >= 0");
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.flags.listen, grpc::InsecureServerCredentials(), &runner->port_);
  // Peers keep long-lived streams open with keepalive pings: accept them.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  for (grpc::Service* service : services) builder.RegisterService(service);
  runner->server_ = builder.BuildAndStart();
  if (runner->server_ == nullptr || runner->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.flags.listen, " (address in use?)"));
  }
  runner->SetServing(false);
  runner->address_ = absl::StrCat(runner->host_, ":", runner->port_);

  if (metrics != nullptr && options.flags.metrics_port >= 0) {
    std::string metrics_host = runner->host_;
    if (metrics_host.size() > 2 && metrics_host.front() == '[') {
      metrics_host = metrics_host.substr(1, metrics_host.size() - 2);
    }
    ASSIGN_OR_RETURN(runner->exposer_, metrics::MetricsExposer::Start(
                                           metrics_host, options.flags.metrics_port, *metrics));
  }
  RETURN_IF_ERROR(runner->WritePortFile());
  std::printf("blockserve %s: listening on %s", options.role.c_str(), runner->address_.c_str());
  if (runner->exposer_) std::printf(", metrics %s", runner->metrics_url().c_str());
  std::printf("\n");
  std::fflush(stdout);
  runner->signal_thread_ = std::thread([r = runner.get()] { r->SignalLoop(); });
  return runner;
}

ServerRunner::~ServerRunner() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    exiting_ = true;
  }
  if (signal_thread_.joinable()) {
    StopSignals::Notify(kExitSignalThread);
    signal_thread_.join();
  }
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

std::string ServerRunner::metrics_url() const {
  if (!exposer_) return "";
  return absl::StrCat("http://", host_, ":", exposer_->port(), "/metrics");
}

absl::Status ServerRunner::WritePortFile() const {
  if (options_.flags.port_file.empty()) return absl::OkStatus();
  nlohmann::json out;
  out["role"] = options_.role;
  out["address"] = address_;
  out["port"] = port_;
  out["metrics_port"] = exposer_ ? exposer_->port() : -1;
  out["metrics_url"] = metrics_url();
  out["pid"] = static_cast<int64_t>(getpid());
  // Write then rename, so a reader never sees a partial file.
  const std::string temp = options_.flags.port_file + ".tmp";
  {
    std::ofstream file(temp);
    file << out.dump() << "\n";
    if (!file) return absl::UnavailableError(absl::StrCat("cannot write --port-file ", temp));
  }
  std::error_code error;
  std::filesystem::rename(temp, options_.flags.port_file, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot write --port-file ", options_.flags.port_file, ": ", error.message()));
  }
  return absl::OkStatus();
}

void ServerRunner::SetServing(bool serving) {
  if (server_ && server_->GetHealthCheckService() != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(serving);
    // SetServingStatus(bool) sets every service name: liveness stays up.
    server_->GetHealthCheckService()->SetServingStatus(kLivenessHealthService, true);
  }
}

void ServerRunner::RequestStop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stop_requested_ = true;
  stop_requested_cv_.notify_all();
}

bool ServerRunner::stop_requested() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stop_requested_;
}

void ServerRunner::SignalLoop() {
  while (true) {
    const int signal = StopSignals::Wait(-1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (exiting_) return;
    }
    if (signal == SIGTERM || signal == SIGINT) {
      LOG(INFO) << options_.role << ": received " << (signal == SIGTERM ? "SIGTERM" : "SIGINT");
      RequestStop();
    }
  }
}

int ServerRunner::Wait(const Hooks& hooks) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    stop_requested_cv_.wait(lock, [&] { return stop_requested_; });
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::microseconds(static_cast<int64_t>(options_.flags.grace_period_s * 1e6));
  LOG(INFO) << options_.role << ": draining (" << state_->in_flight()
            << " requests in flight, grace period " << options_.flags.grace_period_s << " s)";
  SetServing(false);
  state_->StartDraining();
  if (hooks.on_drain) hooks.on_drain();
  auto idle = [&] { return state_->in_flight() == 0 && (!hooks.idle || hooks.idle()); };
  while (!idle() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!idle()) {
    LOG(WARNING) << options_.role << ": grace period over with " << state_->in_flight()
                 << " requests in flight: cancelling them";
  }
  // Cancels whatever is left (long-lived peer streams, late requests) and
  // waits for their reactors to finish.
  server_->Shutdown(std::chrono::system_clock::now());
  if (hooks.stop) hooks.stop();
  exposer_.reset();
  LOG(INFO) << options_.role << ": stopped after "
            << std::chrono::duration<double>(Clock::now() - start).count() << " s";
  return 0;
}

}  // namespace blockserve::services
