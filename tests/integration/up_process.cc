#include "tests/integration/up_process.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace blockserve::testing {

absl::StatusOr<std::unique_ptr<UpProcess>> UpProcess::Start(const std::vector<std::string>& args,
                                                            double timeout_s) {
  static int counter = 0;
  std::unique_ptr<UpProcess> up(new UpProcess());
  up->port_file_ = std::filesystem::temp_directory_path() /
                   absl::StrCat("blockserve-up-", getpid(), "-", counter++, ".json");
  std::filesystem::remove(up->port_file_);
  std::vector<std::string> full = {"up"};
  full.insert(full.end(), args.begin(), args.end());
  full.push_back("--port-file=" + up->port_file_);
  up->process_ = std::make_unique<ChildGuard>(full);
  bool exited = false;
  const bool ready = Eventually(
      [&] {
        if (up->process_->WaitExit(0).has_value()) {
          exited = true;
          return true;
        }
        return up->State().is_object();
      },
      timeout_s);
  if (exited) return absl::UnavailableError("blockserve up exited during start-up");
  if (!ready) return absl::DeadlineExceededError("blockserve up did not come up");
  return up;
}

UpProcess::~UpProcess() {
  // A clean stop first (each tier drains; nothing is in flight by now), so
  // no service outlives the test; then the guard kills what is left.
  process_->Signal(SIGTERM);
  process_->WaitExit(30);
  process_.reset();
  std::error_code error;
  std::filesystem::remove(port_file_, error);
}

nlohmann::json UpProcess::State() const {
  std::ifstream in(port_file_);
  if (!in) return nullptr;
  nlohmann::json state = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return state.is_discarded() ? nlohmann::json(nullptr) : state;
}

std::string UpProcess::gateway() const { return State().value("gateway", std::string()); }

std::vector<std::string> UpProcess::MetricsUrls(const std::string& role) const {
  std::vector<std::string> urls;
  const nlohmann::json state = State();
  if (!state.is_object()) return urls;
  for (const auto& service : state["services"]) {
    if (service["role"] == role) urls.push_back(service["metrics_url"]);
  }
  return urls;
}

std::vector<pid_t> UpProcess::Pids(const std::string& role) const {
  std::vector<pid_t> pids;
  const nlohmann::json state = State();
  if (!state.is_object()) return pids;
  for (const auto& service : state["services"]) {
    if (service["role"] == role) pids.push_back(service["pid"].get<pid_t>());
  }
  return pids;
}

std::vector<std::string> UpProcess::Workers() const {
  const nlohmann::json state = State();
  if (!state.is_object() || !state.contains("workers")) return {};
  return state["workers"].get<std::vector<std::string>>();
}

std::unique_ptr<v1::Generation::Stub> UpProcess::Client() const {
  return v1::Generation::NewStub(
      grpc::CreateChannel(gateway(), grpc::InsecureChannelCredentials()));
}

}  // namespace blockserve::testing
