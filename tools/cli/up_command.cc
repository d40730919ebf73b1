// blockserve up: the whole stack on one machine: token workers, context
// service replica(s) and the gateway, each a separate process on loopback.
//
// Start order: workers, then context services (given the workers'
// addresses), then the gateway (given the context addresses); each must
// report SERVING on the health service before the next starts. A child that
// fails to start stops everything (exit status 1, with the child's error on
// stderr). Ctrl-C or SIGTERM stops the stack in the reverse order, each
// layer drained before the next: gateway, context services, workers.
// Children live in their own process group (so a terminal's Ctrl-C reaches
// only `up`, which stops them in order) and get SIGTERM if `up` dies.
// Children are reaped by polling (waitpid WNOHANG) every 200 ms.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "services/common/health_probe.h"
#include "services/common/stop_signals.h"
#include "tools/cli/child_process.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"

namespace blockserve::cli {
namespace {

struct Service {
  ChildProcess process;
  std::string role;  // "worker", "context", "gateway"
  std::string port_file;
  std::string address;
  std::string metrics_url;
};

// True when SIGINT or SIGTERM has arrived (consumes it).
bool StopRequested() { return services::StopSignals::Wait(0) > 0; }

class Stack {
 public:
  Stack(std::string binary, std::string run_dir, double startup_timeout_s, double grace_s)
      : binary_(std::move(binary)),
        run_dir_(std::move(run_dir)),
        startup_timeout_s_(startup_timeout_s),
        grace_s_(grace_s) {}

  // Starts one service and waits until it is SERVING.
  absl::Status Start(const std::string& name, const std::string& role,
                     std::vector<std::string> args) {
    Service service;
    service.role = role;
    service.port_file = absl::StrCat(run_dir_, "/", name, ".json");
    args.push_back(absl::StrCat("--port-file=", service.port_file));
    absl::StatusOr<ChildProcess> child = SpawnChild(name, binary_, args, group_);
    if (!child.ok()) return child.status();
    service.process = *std::move(child);
    if (group_ == 0) group_ = service.process.pid;
    services_.push_back(std::move(service));
    Service& s = services_.back();
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::microseconds(static_cast<int64_t>(startup_timeout_s_ * 1e6));
    // The port file appears once it listens.
    while (true) {
      if (s.process.Poll()) {
        return absl::UnavailableError(
            absl::StrCat(name, " ", s.process.Describe(), " before it was ready"));
      }
      if (StopRequested()) return absl::CancelledError("stopped during start-up");
      std::ifstream in(s.port_file);
      if (in) {
        nlohmann::json info = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
        if (info.is_object() && info.contains("address")) {
          s.address = info["address"].get<std::string>();
          s.metrics_url = info.value("metrics_url", "");
          break;
        }
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(name, " did not start listening within ", startup_timeout_s_, " s"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    bool stop = false;
    absl::Status serving = services::WaitUntilServing(s.address, startup_timeout_s_, [&] {
      stop = StopRequested();
      return !stop && !s.process.Poll();
    });
    if (serving.ok()) return absl::OkStatus();
    if (stop) return absl::CancelledError("stopped during start-up");
    if (s.process.exited) {
      return absl::UnavailableError(
          absl::StrCat(name, " ", s.process.Describe(), " before it was ready"));
    }
    return serving;
  }

  // Stops the services of `role`: SIGTERM, wait for the drain, SIGKILL the
  // stragglers. True when all exited with status 0.
  bool StopRole(const std::string& role) {
    bool clean = true;
    for (Service& s : services_) {
      if (s.role == role) s.process.Signal(SIGTERM);
    }
    for (Service& s : services_) {
      if (s.role != role) continue;
      if (!s.process.WaitFor(grace_s_ + 10)) {
        std::fprintf(stderr, "blockserve up: %s did not stop in time: killing it\n",
                     s.process.name.c_str());
        s.process.Signal(SIGKILL);
        s.process.WaitFor(5);
        clean = false;
      } else if (!WIFEXITED(s.process.wait_status) || WEXITSTATUS(s.process.wait_status) != 0) {
        std::fprintf(stderr, "blockserve up: %s %s\n", s.process.name.c_str(),
                     s.process.Describe().c_str());
        clean = false;
      }
    }
    return clean;
  }

  bool StopAll() {
    bool clean = StopRole("gateway");
    clean &= StopRole("context");
    clean &= StopRole("worker");
    return clean;
  }

  // The first child that exited, if any.
  const Service* Exited() {
    for (Service& s : services_) {
      if (s.process.Poll()) return &s;
    }
    return nullptr;
  }

  std::vector<std::string> Addresses(const std::string& role) const {
    std::vector<std::string> out;
    for (const Service& s : services_) {
      if (s.role == role) out.push_back(s.address);
    }
    return out;
  }
  const std::vector<Service>& services() const { return services_; }

 private:
  const std::string binary_;
  const std::string run_dir_;
  const double startup_timeout_s_;
  const double grace_s_;
  pid_t group_ = 0;
  std::vector<Service> services_;
};

}  // namespace

int UpCommand(const Args& args) {
  // First: SIGINT/SIGTERM become events on a pipe (the handler does
  // nothing else); the loops below wait for them.
  services::StopSignals::Install();

  std::string model_dir;
  std::string tokenizer;
  std::string host = "127.0.0.1";
  std::string device = "cpu";
  std::string weight_dtype = "f32";
  std::string port_file;
  int workers = 2;
  int context_replicas = 1;
  int port = 0;
  int threads = 1;
  double grace_s = 10;
  double startup_timeout_s = 120;
  std::vector<std::string> worker_args, context_args, gateway_args;
  ArgParser parser("blockserve up",
                   "Starts the gateway, context service(s) and token workers as separate "
                   "processes on this machine, prints the gateway address and each service's "
                   "metrics URL, and stops them all on Ctrl-C or SIGTERM.");
  parser.AddString("model", &model_dir, "model directory", /*required=*/true);
  parser.AddString("tokenizer", &tokenizer,
                   "tokenizer.json for the gateway (default: MODEL/tokenizer.json if present)");
  parser.AddInt("workers", &workers, "token workers");
  parser.AddInt("context-replicas", &context_replicas, "context service replicas");
  parser.AddInt("port", &port, "gateway port (0: a free port)");
  parser.AddString("host", &host, "address every service listens on");
  parser.AddString("device", &device, "compute device of the context services and workers");
  parser.AddInt("threads", &threads, "CPU threads per context service and per worker");
  parser.AddString("weight-dtype", &weight_dtype, "weight storage: f32, bf16 or f16");
  parser.AddDouble("grace-period", &grace_s, "seconds each service may drain when stopping");
  parser.AddDouble("startup-timeout", &startup_timeout_s,
                   "seconds each service may take to become SERVING");
  parser.AddString("port-file", &port_file,
                   "write the gateway address, metrics URLs and pids here as JSON once up");
  parser.AddRepeated("worker-arg", &worker_args, "extra flag for every worker (repeatable)");
  parser.AddRepeated("context-arg", &context_args,
                     "extra flag for every context service (repeatable)");
  parser.AddRepeated("gateway-arg", &gateway_args, "extra flag for the gateway (repeatable)");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  if (workers < 1 || context_replicas < 1 || port < 0 || port > 65535) {
    std::fprintf(stderr,
                 "blockserve up: --workers and --context-replicas must be at least 1, --port "
                 "in 0..65535\n");
    return 2;
  }
  std::error_code error;
  if (!std::filesystem::is_directory(model_dir, error)) {
    std::fprintf(stderr, "blockserve up: --model %s is not a directory\n", model_dir.c_str());
    return 1;
  }
  char run_dir_template[] = "/tmp/blockserve-up-XXXXXX";
  if (mkdtemp(run_dir_template) == nullptr) {
    std::fprintf(stderr, "blockserve up: cannot create a run directory in /tmp\n");
    return 1;
  }
  const std::string run_dir = run_dir_template;
  const std::string grace = absl::StrCat("--grace-period=", grace_s);
  const std::vector<std::string> model_args = {
      absl::StrCat("--model=", model_dir), absl::StrCat("--device=", device),
      absl::StrCat("--threads=", threads), absl::StrCat("--weight-dtype=", weight_dtype)};
  const std::string listen_any = absl::StrCat("--listen=", host, ":0");

  Stack stack(SelfExecutable(), run_dir, startup_timeout_s, grace_s);
  absl::Status status;
  for (int i = 0; i < workers && status.ok(); ++i) {
    std::vector<std::string> a = {"worker", listen_any, grace};
    a.insert(a.end(), model_args.begin(), model_args.end());
    a.insert(a.end(), worker_args.begin(), worker_args.end());
    status = stack.Start(absl::StrCat("worker-", i), "worker", a);
  }
  for (int i = 0; i < context_replicas && status.ok(); ++i) {
    std::vector<std::string> a = {"context", listen_any, grace,
                                  "--workers=" + absl::StrJoin(stack.Addresses("worker"), ",")};
    a.insert(a.end(), model_args.begin(), model_args.end());
    a.insert(a.end(), context_args.begin(), context_args.end());
    status = stack.Start(absl::StrCat("context-", i), "context", a);
  }
  if (status.ok()) {
    std::vector<std::string> a = {"gateway", absl::StrCat("--listen=", host, ":", port), grace,
                                  "--context=" + absl::StrJoin(stack.Addresses("context"), ","),
                                  absl::StrCat("--model=", model_dir)};
    if (!tokenizer.empty()) a.push_back(absl::StrCat("--tokenizer=", tokenizer));
    a.insert(a.end(), gateway_args.begin(), gateway_args.end());
    status = stack.Start("gateway", "gateway", a);
  }
  if (!status.ok()) {
    const bool cancelled = status.code() == absl::StatusCode::kCancelled;
    if (!cancelled)
      std::fprintf(stderr, "blockserve up: %s\n", std::string(status.message()).c_str());
    stack.StopAll();
    std::filesystem::remove_all(run_dir, error);
    return cancelled ? 0 : 1;
  }

  nlohmann::json summary;
  summary["gateway"] = stack.Addresses("gateway")[0];
  std::printf("blockserve up: serving %s\n", model_dir.c_str());
  std::printf("  gateway: %s\n", stack.Addresses("gateway")[0].c_str());
  std::printf("  metrics:\n");
  for (const Service& s : stack.services()) {
    std::printf("    %-10s %s\n", s.process.name.c_str(), s.metrics_url.c_str());
    summary["services"].push_back({{"name", s.process.name},
                                   {"role", s.role},
                                   {"address", s.address},
                                   {"metrics_url", s.metrics_url},
                                   {"pid", s.process.pid}});
  }
  std::printf("Try: blockserve generate --gateway %s --tokens \"1 2 3\"\n",
              stack.Addresses("gateway")[0].c_str());
  std::printf("Stop with Ctrl-C.\n");
  std::fflush(stdout);
  if (!port_file.empty()) {
    const std::string temp = port_file + ".tmp";
    std::ofstream(temp) << summary.dump() << "\n";
    std::filesystem::rename(temp, port_file, error);
  }

  // Wait for a stop signal or a child's death.
  int code = 0;
  while (true) {
    const int signal = services::StopSignals::Wait(0.2);
    if (signal == SIGINT || signal == SIGTERM) {
      std::fprintf(stderr, "blockserve up: stopping\n");
      code = stack.StopAll() ? 0 : 1;
      break;
    }
    if (const Service* dead = stack.Exited()) {
      std::fprintf(stderr, "blockserve up: %s %s unexpectedly: stopping the stack\n",
                   dead->process.name.c_str(), dead->process.Describe().c_str());
      stack.StopAll();
      code = 1;
      break;
    }
  }
  if (!port_file.empty()) std::filesystem::remove(port_file, error);
  std::filesystem::remove_all(run_dir, error);
  return code;
}

}  // namespace blockserve::cli
