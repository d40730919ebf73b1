#include "tests/integration/stack_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpcpp/generic/generic_stub.h"
#include "nlohmann/json.hpp"
#include "services/common/health_probe.h"

namespace blockserve::testing {
namespace {

std::string TempPath(const std::string& stem) {
  char name[] = "/tmp/blockserve-test-XXXXXX";
  const int fd = mkstemp(name);
  if (fd >= 0) close(fd);
  unlink(name);
  return absl::StrCat(name, "-", stem);
}

pid_t SpawnBlockserve(const std::vector<std::string>& args, const std::string& stdout_file) {
  std::vector<std::string> storage = {BLOCKSERVE_BIN};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // the test died: so do we
    if (getppid() != parent) _exit(1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int out = stdout_file.empty()
                        ? open("/dev/null", O_WRONLY)
                        : open(stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out >= 0) dup2(out, STDOUT_FILENO);
    setenv("BLOCKSERVE_LOG_LEVEL", "WARNING", 0);
    execv(BLOCKSERVE_BIN, argv.data());
    _exit(127);
  }
  if (pid > 0) setpgid(pid, pid);
  return pid;
}

std::optional<int> WaitPid(pid_t pid, bool& reaped, int& code, double timeout_s) {
  if (reaped) return code;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6));
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      reaped = true;
      code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return code;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void KillGroupAndReap(pid_t pid, bool& reaped) {
  if (pid <= 0 || reaped) return;
  killpg(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  reaped = true;
}

}  // namespace

std::string HttpGet(const std::string& url) {
  // http://HOST:PORT/PATH
  const std::string rest = url.substr(url.find("//") + 2);
  const std::string host_port = rest.substr(0, rest.find('/'));
  const std::string path = rest.substr(rest.find('/'));
  const std::string host = host_port.substr(0, host_port.rfind(':'));
  int port = 0;
  if (!absl::SimpleAtoi(host_port.substr(host_port.rfind(':') + 1), &port)) return "";
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request =
        absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host_port, "\r\n\r\n");
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[65536];
      ssize_t n;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
    }
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

std::string TestModelDir(const std::string& name) {
  return std::string(BLOCKSERVE_TEST_DATA_DIR) + "/models/" + name;
}

absl::StatusOr<std::unique_ptr<ServiceProcess>> ServiceProcess::Start(
    const std::string& role, const std::vector<std::string>& args, bool wait_serving,
    double timeout_s) {
  std::unique_ptr<ServiceProcess> process(new ServiceProcess());
  process->port_file_ = TempPath(role + ".json");
  std::vector<std::string> full = {role, "--listen=127.0.0.1:0", "--metrics-port=0",
                                   "--port-file=" + process->port_file_};
  full.insert(full.end(), args.begin(), args.end());
  process->pid_ = SpawnBlockserve(full, "");
  if (process->pid_ <= 0) return absl::InternalError("fork failed");
  const bool listening = Eventually(
      [&] {
        if (!process->running()) return true;
        std::ifstream in(process->port_file_);
        if (!in) return false;
        nlohmann::json info = nlohmann::json::parse(in, nullptr, false);
        if (!info.is_object() || !info.contains("address")) return false;
        process->address_ = info["address"];
        process->metrics_url_ = info["metrics_url"];
        return true;
      },
      timeout_s);
  if (!process->running()) {
    return absl::UnavailableError(absl::StrCat(role, " exited with status ", process->exit_code_,
                                               " during start-up: ", absl::StrJoin(args, " ")));
  }
  if (!listening) return absl::DeadlineExceededError(role + " did not start listening");
  if (wait_serving) {
    ServiceProcess* p = process.get();
    absl::Status status =
        services::WaitUntilServing(p->address_, timeout_s, [p] { return p->running(); });
    if (!status.ok()) return status;
  }
  return process;
}

ServiceProcess::~ServiceProcess() {
  KillGroupAndReap(pid_, reaped_);
  unlink(port_file_.c_str());
}

void ServiceProcess::Signal(int signal) const {
  if (!reaped_) kill(pid_, signal);
}

std::optional<int> ServiceProcess::WaitExit(double timeout_s) {
  return WaitPid(pid_, reaped_, exit_code_, timeout_s);
}

bool ServiceProcess::running() { return !WaitPid(pid_, reaped_, exit_code_, 0).has_value(); }

std::string ServiceProcess::ScrapeMetrics() const { return HttpGet(metrics_url_); }

double ServiceProcess::Metric(const std::string& series) const {
  return MetricValue(ScrapeMetrics(), series);
}

double MetricValue(const std::string& exposition, const std::string& series) {
  // `name{a="x",b="y"}`: sums the series of `name` carrying those labels.
  std::string name = series;
  std::vector<std::string> labels;
  if (const size_t brace = series.find('{'); brace != std::string::npos) {
    name = series.substr(0, brace);
    const std::string inside = series.substr(brace + 1, series.size() - brace - 2);
    for (absl::string_view label : absl::StrSplit(inside, ',', absl::SkipEmpty())) {
      labels.push_back(std::string(label));
    }
  }
  double sum = 0;
  bool found = false;
  std::istringstream text(exposition);
  std::string line;
  while (std::getline(text, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t end_of_name = line.find_first_of("{ ");
    if (end_of_name == std::string::npos || line.substr(0, end_of_name) != name) continue;
    const size_t space = line.rfind(' ');
    const std::string label_part = line.substr(end_of_name, space - end_of_name);
    bool match = true;
    for (const std::string& label : labels) match &= label_part.find(label) != std::string::npos;
    if (!match) continue;
    double value = 0;
    if (absl::SimpleAtod(line.substr(space + 1), &value)) {
      sum += value;
      found = true;
    }
  }
  return found ? sum : std::numeric_limits<double>::quiet_NaN();
}

ChildGuard::ChildGuard(const std::vector<std::string>& args, const std::string& stdout_file)
    : pid_(SpawnBlockserve(args, stdout_file)) {}

ChildGuard::~ChildGuard() { KillGroupAndReap(pid_, reaped_); }

void ChildGuard::Signal(int signal) const {
  if (!reaped_) kill(pid_, signal);
}

std::optional<int> ChildGuard::WaitExit(double timeout_s) {
  return WaitPid(pid_, reaped_, exit_code_, timeout_s);
}

absl::StatusOr<std::unique_ptr<Stack>> Stack::Start(const std::string& model_dir, int workers,
                                                    int contexts,
                                                    const std::vector<std::string>& gateway_args,
                                                    const std::vector<std::string>& context_args,
                                                    const std::vector<std::string>& worker_args) {
  auto stack = std::make_unique<Stack>();
  const std::vector<std::string> model = {"--model=" + model_dir, "--threads=1"};
  std::vector<std::string> worker_addresses;
  for (int i = 0; i < workers; ++i) {
    std::vector<std::string> args = model;
    args.insert(args.end(), worker_args.begin(), worker_args.end());
    auto worker = ServiceProcess::Start("worker", args);
    if (!worker.ok()) return worker.status();
    worker_addresses.push_back((*worker)->address());
    stack->workers.push_back(*std::move(worker));
  }
  std::vector<std::string> context_addresses;
  for (int i = 0; i < contexts; ++i) {
    std::vector<std::string> args = model;
    args.push_back("--workers=" + absl::StrJoin(worker_addresses, ","));
    args.insert(args.end(), context_args.begin(), context_args.end());
    auto context = ServiceProcess::Start("context", args);
    if (!context.ok()) return context.status();
    context_addresses.push_back((*context)->address());
    stack->contexts.push_back(*std::move(context));
  }
  std::vector<std::string> args = {"--context=" + absl::StrJoin(context_addresses, ","),
                                   "--model=" + model_dir};
  args.insert(args.end(), gateway_args.begin(), gateway_args.end());
  auto gateway = ServiceProcess::Start("gateway", args);
  if (!gateway.ok()) return gateway.status();
  stack->gateway = *std::move(gateway);
  return stack;
}

std::unique_ptr<v1::Generation::Stub> Stack::Client() const {
  return v1::Generation::NewStub(
      grpc::CreateChannel(gateway->address(), grpc::InsecureChannelCredentials()));
}

GenerateResult Generate(v1::Generation::Stub& stub, const v1::GenerateRequest& request,
                        double timeout_s) {
  GenerateResult result;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6)));
  auto reader = stub.Generate(&context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    ++result.messages;
    if (response.has_start()) {
      result.has_start = true;
      result.start_seed = response.start().seed();
    }
    result.tokens.insert(result.tokens.end(), response.token_ids().begin(),
                         response.token_ids().end());
    result.logprobs.insert(result.logprobs.end(), response.logprobs().begin(),
                           response.logprobs().end());
    result.text += response.text();
    if (response.has_end()) result.end = response.end();
  }
  result.status = reader->Finish();
  return result;
}

v1::GenerateRequest TokenRequest(const std::vector<int32_t>& prompt, int max_new_tokens) {
  v1::GenerateRequest request;
  request.mutable_token_ids()->mutable_ids()->Assign(prompt.begin(), prompt.end());
  request.set_max_new_tokens(max_new_tokens);
  return request;
}

absl::StatusOr<std::string> ReflectionListServicesRaw(const std::string& address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  auto step = [&](intptr_t expected) {
    return cq.Next(&tag, &ok) && reinterpret_cast<intptr_t>(tag) == expected && ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  if (!step(1)) return absl::UnavailableError("reflection call did not start");
  // ServerReflectionRequest { list_services = 7: "" }
  const char request_bytes[] = {0x3a, 0x00};
  grpc::Slice slice(request_bytes, sizeof(request_bytes));
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  if (!step(2)) return absl::UnavailableError("reflection write failed");
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  if (!step(3)) return absl::UnavailableError("reflection read failed");
  call->WritesDone(reinterpret_cast<void*>(4));
  step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  std::vector<grpc::Slice> slices;
  (void)response.Dump(&slices);
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return bytes;
}

std::string HealthStatus(const std::string& address) {
  switch (services::ProbeHealth(address, 2.0)) {
    case services::HealthState::kServing:
      return "SERVING";
    case services::HealthState::kNotServing:
      return "NOT_SERVING";
    case services::HealthState::kUnreachable:
      return "UNREACHABLE";
  }
  return "";
}

}  // namespace blockserve::testing
