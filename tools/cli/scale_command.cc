// blockserve scale: changes the number of token workers of a running
// `blockserve up` (see tools/cli/up_command.cc) while it serves. Writes a
// request into the control file named in up's --port-file and waits until
// up reports the result there. Removed workers are drained first: no
// request fails. One scale at a time per stack.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"

namespace blockserve::cli {
namespace {

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

}  // namespace

int ScaleCommand(const Args& args) {
  std::string up_file;
  int workers = 0;
  double timeout_s = 300;
  ArgParser parser("blockserve scale",
                   "Scales the token workers of a running `blockserve up` without a restart: "
                   "new workers join every context service once SERVING; removed ones (the "
                   "newest) finish their in-flight blocks before they stop. Prints the new "
                   "worker addresses as JSON.");
  parser.AddString("up-file", &up_file, "the --port-file of the running `blockserve up`",
                   /*required=*/true);
  parser.AddInt("workers", &workers, "token workers wanted (at least 1)", /*required=*/true);
  parser.AddDouble("timeout", &timeout_s, "seconds to wait for the scaling to finish");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  if (workers < 1) {
    std::fprintf(stderr, "blockserve scale: --workers must be at least 1\n");
    return 2;
  }
  const nlohmann::json state = ReadJson(up_file);
  if (!state.is_object() || !state.contains("control_file") || !state.contains("pid")) {
    return Fail("scale", absl::FailedPreconditionError(absl::StrCat(
                             up_file, " is not the port file of a running `blockserve up`")));
  }
  const std::string control_file = state["control_file"].get<std::string>();
  const pid_t up_pid = state["pid"].get<pid_t>();
  if (kill(up_pid, 0) != 0) {
    return Fail("scale", absl::FailedPreconditionError(
                             absl::StrCat("`blockserve up` (pid ", up_pid, ") is not running")));
  }
  const std::string id =
      absl::StrCat(getpid(), "-", std::chrono::steady_clock::now().time_since_epoch().count());
  {
    const std::string temp = absl::StrCat(control_file, ".", id, ".tmp");
    std::ofstream(temp) << nlohmann::json{{"id", id}, {"workers", workers}}.dump() << "\n";
    std::error_code error;
    std::filesystem::rename(temp, control_file, error);
    if (error) {
      return Fail("scale", absl::UnavailableError(
                               absl::StrCat("cannot write ", control_file, ": ", error.message())));
    }
  }
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6));
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const nlohmann::json now = ReadJson(up_file);
    if (now.is_object() && now.contains("last_scale") && now["last_scale"].is_object() &&
        now["last_scale"].value("id", std::string()) == id) {
      const nlohmann::json& result = now["last_scale"];
      if (!result.value("ok", false)) {
        return Fail("scale", absl::UnavailableError(result.value("error", std::string())));
      }
      std::printf("%s\n", nlohmann::json{{"workers", now["workers"]}}.dump().c_str());
      std::fflush(stdout);
      return 0;
    }
    if (kill(up_pid, 0) != 0) {
      return Fail("scale", absl::UnavailableError("`blockserve up` exited while scaling"));
    }
  }
  return Fail("scale", absl::DeadlineExceededError(absl::StrCat(
                           "no answer from `blockserve up` within ", timeout_s, " s")));
}

}  // namespace blockserve::cli
