// blockserve gateway: the public Generation service, routing to context
// service replicas.
#include <cstdio>
#include <filesystem>

#include "services/common/server_runner.h"
#include "services/context/context_server.h"
#include "services/gateway/gateway_server.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"

namespace blockserve::cli {

int GatewayCommand(const Args& args) {
  services::ServerRunner::InstallStopSignals();  // first: a signal during start-up must not kill us
  services::GatewayServerOptions options;
  std::string contexts;
  std::string model_dir;
  int64_t max_prompt_bytes = static_cast<int64_t>(options.limits.max_prompt_bytes);
  ArgParser parser("blockserve gateway",
                   "Runs the gateway, the only service clients see: validates and tokenizes "
                   "requests, admits them within bounded concurrency, routes each to the "
                   "least-loaded context service replica and streams the output back. "
                   "SIGTERM drains it.");
  options.server.Register(parser);
  parser.AddString("context", &contexts, "context service addresses, HOST:PORT,HOST:PORT",
                   /*required=*/true);
  parser.AddString("tokenizer", &options.tokenizer_path,
                   "tokenizer.json for text prompts (default: MODEL/tokenizer.json if --model "
                   "is given and has one; otherwise token ids only)");
  parser.AddString("model", &model_dir,
                   "model directory, only to find its tokenizer.json (weights are not loaded)");
  parser.AddInt("threads", &options.threads, "tokenization threads");
  parser.AddInt("max-concurrent", &options.admission.max_running,
                "Generate requests running at once");
  parser.AddInt("max-queued", &options.admission.max_queued,
                "Generate requests waiting for admission; beyond: RESOURCE_EXHAUSTED");
  parser.AddInt("default-max-new-tokens", &options.limits.default_max_new_tokens,
                "max_new_tokens of a request that does not set it");
  parser.AddInt("max-new-tokens-limit", &options.limits.max_new_tokens_limit,
                "largest max_new_tokens accepted");
  parser.AddInt("max-prompt-bytes", &max_prompt_bytes, "largest text prompt accepted");
  parser.AddDouble("max-request-seconds", &options.max_request_seconds,
                   "deadline of a request whose client sets none (or a later one)");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  absl::StatusOr<std::set<std::string>> addresses = services::ParseAddressList(contexts, "context");
  if (!addresses.ok()) {
    std::fprintf(stderr, "blockserve gateway: %s\n",
                 std::string(addresses.status().message()).c_str());
    return 2;
  }
  if (options.admission.max_running < 1 || options.admission.max_queued < 0 ||
      options.threads < 1 || options.limits.default_max_new_tokens < 1 ||
      options.limits.max_new_tokens_limit < options.limits.default_max_new_tokens ||
      max_prompt_bytes < 1 || options.max_request_seconds <= 0) {
    std::fprintf(stderr,
                 "blockserve gateway: --max-concurrent, --threads, --default-max-new-tokens "
                 "and --max-prompt-bytes must be >= 1, --max-queued >= 0, "
                 "--max-new-tokens-limit >= --default-max-new-tokens, "
                 "--max-request-seconds > 0\n");
    return 2;
  }
  options.limits.max_prompt_bytes = static_cast<size_t>(max_prompt_bytes);
  options.context_replicas.assign(addresses->begin(), addresses->end());
  if (options.tokenizer_path.empty() && !model_dir.empty()) {
    const std::filesystem::path candidate = std::filesystem::path(model_dir) / "tokenizer.json";
    std::error_code error;
    if (std::filesystem::exists(candidate, error)) options.tokenizer_path = candidate.string();
  }
  return services::RunGateway(options);
}

}  // namespace blockserve::cli
