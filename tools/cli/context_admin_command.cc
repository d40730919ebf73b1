// blockserve context-admin: calls a context service's ContextAdmin service
// (proto/blockserve/v1/context_admin.proto): lists or replaces its
// token-worker set, or announces a drain (a Kubernetes preStop hook runs
// `blockserve context-admin --announce-drain --then-sleep 3`). Prints the
// worker set as one JSON object for --list and --set-workers.
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "services/context/context_admin_client.h"
#include "services/context/context_server.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"

namespace blockserve::cli {
namespace {

nlohmann::json WorkersJson(const v1::WorkersResponse& response) {
  nlohmann::json out;
  out["membership"] = response.membership();
  out["workers"] = nlohmann::json::array();
  for (const v1::WorkerState& worker : response.workers()) {
    out["workers"].push_back({{"address", worker.address()},
                              {"ready", worker.ready()},
                              {"accepting", worker.accepting()},
                              {"removed", worker.removed()},
                              {"outstanding_blocks", worker.outstanding_blocks()}});
  }
  return out;
}

}  // namespace

int ContextAdminCommand(const Args& args) {
  std::string context = "127.0.0.1:7002";
  std::string set_workers;
  bool list = false;
  bool announce_drain = false;
  double then_sleep_s = 0;
  double timeout_s = 5;
  ArgParser parser(
      "blockserve context-admin",
      "Operator calls to a context service (ContextAdmin; answered only from "
      "the same machine unless the service runs with --admin-any-peer): list or replace "
      "its token workers, or announce a drain so gateways route no new sessions "
      "to it. Exactly one of --list, --set-workers, --announce-drain.");
  parser.AddString("context", &context, "context service address HOST:PORT");
  parser.AddBool("list", &list, "print the worker set as JSON");
  parser.AddString("set-workers", &set_workers,
                   "replace the worker set with these HOST:PORT addresses (comma-separated); "
                   "removed workers finish their in-flight blocks first");
  parser.AddBool("announce-drain", &announce_drain,
                 "report draining to gateways (they stop routing new sessions here)");
  parser.AddDouble("then-sleep", &then_sleep_s,
                   "seconds to wait after a successful call (preStop: let gateways see the "
                   "drain before SIGTERM)");
  parser.AddDouble("timeout", &timeout_s, "deadline of the call in seconds");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  if (static_cast<int>(list) + static_cast<int>(!set_workers.empty()) +
          static_cast<int>(announce_drain) !=
      1) {
    std::fprintf(stderr,
                 "blockserve context-admin: give exactly one of --list, --set-workers, "
                 "--announce-drain\n");
    return 2;
  }
  if (!(timeout_s > 0) || then_sleep_s < 0) {
    std::fprintf(stderr,
                 "blockserve context-admin: --timeout must be positive, --then-sleep not "
                 "negative\n");
    return 2;
  }
  if (announce_drain) {
    absl::Status status = services::AnnounceContextDrain(context, timeout_s);
    if (!status.ok()) return Fail("context-admin", status);
  } else {
    absl::StatusOr<v1::WorkersResponse> response;
    if (list) {
      response = services::ListContextWorkers(context, timeout_s);
    } else {
      absl::StatusOr<std::set<std::string>> workers =
          services::ParseAddressList(set_workers, "set-workers");
      if (!workers.ok()) {
        std::fprintf(stderr, "blockserve context-admin: %s\n",
                     std::string(workers.status().message()).c_str());
        return 2;
      }
      response = services::SetContextWorkers(context, *workers, timeout_s);
    }
    if (!response.ok()) return Fail("context-admin", response.status());
    std::printf("%s\n", WorkersJson(*response).dump().c_str());
    std::fflush(stdout);
  }
  if (then_sleep_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(then_sleep_s));
  return 0;
}

}  // namespace blockserve::cli
