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
//
// Scaling while serving (`blockserve scale --up-file PORT_FILE --workers N`,
// tools/cli/scale_command.cc): the port file names a control file in the
// run directory; `scale` writes a request there and `up`, polling it with
// its children, applies it:
//   more workers: start them, wait until SERVING, then give every context
//     service the new set (ContextAdmin.SetWorkers);
//   fewer workers: the newest go. Every context service first gets the set
//     without them (the pool sends them no new blocks and lets their
//     in-flight blocks finish), `up` waits until no context lists them any
//     more, then stops them with SIGTERM (their own drain finds nothing).
// No request fails either way. The result, the new worker list and a fresh
// Prometheus target list (--prometheus-targets) are written when done.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "services/common/health_probe.h"
#include "services/common/stop_signals.h"
#include "services/context/context_admin_client.h"
#include "shared/common/status_macros.h"
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
    return StopWhere([&](const Service& s) { return s.role == role; });
  }

  // Starts a worker with the given arguments (the next name worker-N).
  absl::Status StartWorker(const std::vector<std::string>& args) {
    return Start(absl::StrCat("worker-", next_worker_++), "worker", args);
  }

  // Scales the token workers to `count` (see the file comment). A failure
  // leaves the stack serving with the workers it has; CANCELLED when a stop
  // signal arrives meanwhile.
  absl::Status ScaleWorkers(int count, const std::vector<std::string>& worker_args) {
    std::vector<std::string> workers = Addresses("worker");
    const int current = static_cast<int>(workers.size());
    if (count < 1) return absl::InvalidArgumentError("a stack needs at least one worker");
    if (count > current) {
      for (int i = current; i < count; ++i) {
        const size_t before = services_.size();
        absl::Status started = StartWorker(worker_args);
        if (!started.ok()) {
          // Forget the one that did not come up; keep serving with the rest.
          if (services_.size() > before) {
            Service& failed = services_.back();
            failed.process.Signal(SIGKILL);
            failed.process.WaitFor(5);
            services_.pop_back();
          }
          if (started.code() == absl::StatusCode::kCancelled) return started;
          absl::Status set = SetContextWorkers();
          return set.ok() ? started : set;
        }
      }
      return SetContextWorkers();
    }
    if (count == current) return absl::OkStatus();
    // The newest workers go.
    std::set<pid_t> leaving;
    std::set<std::string> leaving_addresses;
    for (auto it = services_.rbegin();
         it != services_.rend() && current - static_cast<int>(leaving.size()) > count; ++it) {
      if (it->role != "worker") continue;
      leaving.insert(it->process.pid);
      leaving_addresses.insert(it->address);
    }
    std::set<std::string> staying;
    for (const Service& s : services_) {
      if (s.role == "worker" && leaving.count(s.process.pid) == 0) staying.insert(s.address);
    }
    RETURN_IF_ERROR(SetContextWorkers(staying));
    // Wait until no context service lists them: their in-flight blocks are
    // done and their streams closed.
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::microseconds(static_cast<int64_t>((grace_s_ + 10) * 1e6));
    for (const std::string& context : Addresses("context")) {
      while (true) {
        if (StopRequested()) return absl::CancelledError("stopped while scaling");
        absl::StatusOr<v1::WorkersResponse> listed =
            services::ListContextWorkers(context, kAdminTimeoutS);
        if (!listed.ok()) return listed.status();
        bool still_listed = false;
        for (const v1::WorkerState& worker : listed->workers()) {
          still_listed |= leaving_addresses.count(worker.address()) > 0;
        }
        if (!still_listed) break;
        if (std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr,
                       "blockserve up: context %s still holds blocks at removed workers after "
                       "%g s; stopping them anyway (their blocks are retried elsewhere)\n",
                       context.c_str(), grace_s_ + 10);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    const bool clean =
        StopWhere([&](const Service& s) { return leaving.count(s.process.pid) > 0; });
    std::erase_if(services_, [&](const Service& s) { return leaving.count(s.process.pid) > 0; });
    if (!clean) return absl::InternalError("a removed worker did not stop cleanly");
    return absl::OkStatus();
  }

  // Gives every context service the current worker set.
  absl::Status SetContextWorkers(std::set<std::string> workers = {}) {
    if (workers.empty()) {
      for (const std::string& address : Addresses("worker")) workers.insert(address);
    }
    for (const std::string& context : Addresses("context")) {
      absl::StatusOr<v1::WorkersResponse> response =
          services::SetContextWorkers(context, workers, kAdminTimeoutS);
      if (!response.ok()) {
        return absl::Status(response.status().code(),
                            absl::StrCat("context ", context, ": ", response.status().message()));
      }
    }
    return absl::OkStatus();
  }

  // SIGTERM to the services `which` selects, wait for their drain, SIGKILL
  // the stragglers. True when all exited with status 0.
  template <typename Which>
  bool StopWhere(Which which) {
    bool clean = true;
    for (Service& s : services_) {
      if (which(s)) s.process.Signal(SIGTERM);
    }
    for (Service& s : services_) {
      if (!which(s)) continue;
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
  static constexpr double kAdminTimeoutS = 5.0;

  const std::string binary_;
  const std::string run_dir_;
  const double startup_timeout_s_;
  const double grace_s_;
  pid_t group_ = 0;
  int next_worker_ = 0;
  std::vector<Service> services_;
};

// "http://HOST:PORT/metrics" -> "HOST:PORT".
std::string MetricsTarget(const std::string& metrics_url) {
  std::string target = metrics_url;
  if (const size_t scheme = target.find("://"); scheme != std::string::npos) {
    target = target.substr(scheme + 3);
  }
  return target.substr(0, target.find('/'));
}

// Writes `text` to `path` atomically (a temporary file renamed over it).
void WriteAtomically(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  std::ofstream(temp) << text;
  std::error_code error;
  std::filesystem::rename(temp, path, error);
}

// Prometheus file_sd target lists, one file per job (blockserve-gateway.json,
// blockserve-context.json, blockserve-worker.json), as
// deploy/prometheus/prometheus-local.yml reads them.
void WritePrometheusTargets(const std::string& dir, const Stack& stack) {
  for (const char* role : {"gateway", "context", "worker"}) {
    nlohmann::json groups = nlohmann::json::array();
    for (const Service& s : stack.services()) {
      if (s.role != role || s.metrics_url.empty()) continue;
      groups.push_back(
          {{"targets", {MetricsTarget(s.metrics_url)}}, {"labels", {{"service", s.process.name}}}});
    }
    WriteAtomically(absl::StrCat(dir, "/blockserve-", role, ".json"), groups.dump(2) + "\n");
  }
}

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
  std::string targets_dir;
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
                   "write the gateway address, metrics URLs and pids here as JSON once up "
                   "(kept up to date; `blockserve scale --up-file` reads it)");
  parser.AddString("prometheus-targets", &targets_dir,
                   "directory for Prometheus file_sd target lists (blockserve-gateway.json, "
                   "blockserve-context.json, blockserve-worker.json), rewritten when scaling; "
                   "see deploy/prometheus/prometheus-local.yml");
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

  if (!targets_dir.empty() && !std::filesystem::is_directory(targets_dir, error)) {
    std::filesystem::create_directories(targets_dir, error);
    if (error) {
      std::fprintf(stderr, "blockserve up: cannot create --prometheus-targets %s: %s\n",
                   targets_dir.c_str(), error.message().c_str());
      return 1;
    }
  }

  Stack stack(SelfExecutable(), run_dir, startup_timeout_s, grace_s);
  std::vector<std::string> worker_command = {"worker", listen_any, grace};
  worker_command.insert(worker_command.end(), model_args.begin(), model_args.end());
  worker_command.insert(worker_command.end(), worker_args.begin(), worker_args.end());
  absl::Status status;
  for (int i = 0; i < workers && status.ok(); ++i) status = stack.StartWorker(worker_command);
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

  const std::string control_file = run_dir + "/scale-request.json";
  nlohmann::json last_scale;  // the result of the last scale request
  // The port file: addresses, metrics URLs, pids, and how to scale.
  auto write_state = [&] {
    if (!targets_dir.empty()) WritePrometheusTargets(targets_dir, stack);
    if (port_file.empty()) return;
    nlohmann::json summary;
    summary["gateway"] = stack.Addresses("gateway")[0];
    summary["pid"] = getpid();
    summary["control_file"] = control_file;
    summary["workers"] = stack.Addresses("worker");
    summary["services"] = nlohmann::json::array();
    for (const Service& s : stack.services()) {
      summary["services"].push_back({{"name", s.process.name},
                                     {"role", s.role},
                                     {"address", s.address},
                                     {"metrics_url", s.metrics_url},
                                     {"pid", s.process.pid}});
    }
    if (!last_scale.is_null()) summary["last_scale"] = last_scale;
    WriteAtomically(port_file, summary.dump() + "\n");
  };

  std::printf("blockserve up: serving %s\n", model_dir.c_str());
  std::printf("  gateway: %s\n", stack.Addresses("gateway")[0].c_str());
  std::printf("  metrics:\n");
  for (const Service& s : stack.services()) {
    std::printf("    %-10s %s\n", s.process.name.c_str(), s.metrics_url.c_str());
  }
  std::printf("Try: blockserve generate --gateway %s --tokens \"1 2 3\"\n",
              stack.Addresses("gateway")[0].c_str());
  std::printf("Stop with Ctrl-C.\n");
  std::fflush(stdout);
  write_state();

  // Wait for a stop signal or a child's death.
  int code = 0;
  while (true) {
    const int signal = services::StopSignals::Wait(0.2);
    if (signal == SIGINT || signal == SIGTERM) {
      std::fprintf(stderr, "blockserve up: stopping\n");
      code = stack.StopAll() ? 0 : 1;
      break;
    }
    if (std::filesystem::exists(control_file, error)) {
      // A `blockserve scale` request: {"id": "...", "workers": N}.
      std::ifstream in(control_file);
      nlohmann::json request = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      in.close();
      std::filesystem::remove(control_file, error);
      absl::Status scaled = absl::InvalidArgumentError("malformed scale request");
      if (request.is_object() && request.contains("workers") &&
          request["workers"].is_number_integer()) {
        const int target = request["workers"].get<int>();
        std::fprintf(stderr, "blockserve up: scaling to %d worker(s)\n", target);
        scaled = stack.ScaleWorkers(target, worker_command);
      }
      if (scaled.code() == absl::StatusCode::kCancelled) {
        std::fprintf(stderr, "blockserve up: stopping\n");
        code = stack.StopAll() ? 0 : 1;
        break;
      }
      if (!scaled.ok()) {
        std::fprintf(stderr, "blockserve up: scaling failed: %s\n",
                     std::string(scaled.message()).c_str());
      }
      const bool has_id =
          request.is_object() && request.contains("id") && request["id"].is_string();
      last_scale = {{"id", has_id ? request["id"].get<std::string>() : ""},
                    {"ok", scaled.ok()},
                    {"error", std::string(scaled.message())},
                    {"workers", stack.Addresses("worker").size()}};
      write_state();
      continue;
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
  if (!targets_dir.empty()) {
    for (const char* role : {"gateway", "context", "worker"}) {
      std::filesystem::remove(absl::StrCat(targets_dir, "/blockserve-", role, ".json"), error);
    }
  }
  std::filesystem::remove_all(run_dir, error);
  return code;
}

}  // namespace blockserve::cli
