// blockserve context: the context service (embedder + block decoder, the
// only long-lived state) as a gRPC server.
#include <cstdio>

#include "services/common/server_runner.h"
#include "services/context/context_server.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"
#include "tools/cli/service_flags.h"

namespace blockserve::cli {

int ContextCommand(const Args& args) {
  services::ServerRunner::InstallStopSignals();  // first: a signal during start-up must not kill us
  ModelFlags model_flags;
  services::ContextServerOptions options;
  std::string workers;
  int64_t kv_cache_mb = options.engine.scheduler.kv_cache_bytes >> 20;
  double group_wait_ms = options.engine.scheduler.group_wait_s * 1e3;
  std::string kv_dtype_text = "f32";
  ArgParser parser("blockserve context",
                   "Runs a context service: holds sessions and their block KV cache, batches "
                   "block-decoder work across sessions and streams each context embedding to "
                   "the least-loaded token worker. SIGTERM drains it.");
  model_flags.Register(parser);
  options.server.Register(parser);
  parser.AddString("workers", &workers,
                   "token workers: HOST:PORT entries and/or dns:///NAME:PORT names (every "
                   "address NAME resolves to, re-resolved periodically), comma-separated",
                   /*required=*/true);
  parser.AddDouble("worker-resolve-interval", &options.worker_resolve_interval_s,
                   "seconds between DNS resolutions of the dns:/// worker names");
  parser.AddBool("admin-any-peer", &options.admin_any_peer,
                 "answer ContextAdmin calls (worker set, drain announcement) from any address, "
                 "not only from this machine; only on a trusted network");
  parser.AddInt("kv-cache-mb", &kv_cache_mb, "block KV cache budget in MiB");
  parser.AddString("kv-dtype", &kv_dtype_text, kKvDTypeHelp);
  parser.AddInt("page-size", &options.engine.scheduler.page_size, "blocks per KV cache page");
  parser.AddInt("max-sessions", &options.engine.scheduler.max_sessions,
                "sessions admitted to the KV cache at once (more wait)");
  parser.AddInt("max-step-blocks", &options.engine.scheduler.max_step_blocks,
                "block rows per block-decoder forward pass (long prompts are chunked)");
  parser.AddInt("pipeline-groups", &options.engine.pipeline_groups,
                "session groups stepped in turn, so the block decoder runs one group while the "
                "token workers decode the others (0: one per ready worker, at least 2)");
  parser.AddDouble("group-wait-ms", &group_wait_ms,
                   "milliseconds a late block of a group is waited for beyond the round trip "
                   "of the group's returned blocks, before the group steps without it");
  parser.AddInt("max-in-flight-per-worker", &options.pool.max_in_flight_per_worker,
                "blocks in flight at one token worker at most");
  parser.AddDouble("block-timeout", &options.pool.block_timeout_s,
                   "seconds before a block at a worker is retried elsewhere");
  parser.AddInt("max-block-attempts", &options.pool.max_attempts,
                "dispatches of one block before its session fails");
  parser.AddDouble("no-worker-timeout", &options.pool.no_worker_timeout_s,
                   "seconds a block may wait for a free token worker before its session fails "
                   "with UNAVAILABLE");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  absl::StatusOr<services::WorkerTargets> targets =
      services::ParseWorkerTargets(workers, "workers");
  if (!targets.ok()) {
    std::fprintf(stderr, "blockserve context: %s\n",
                 std::string(targets.status().message()).c_str());
    return 2;
  }
  if (!(options.worker_resolve_interval_s >= 0.05)) {
    std::fprintf(stderr, "blockserve context: --worker-resolve-interval must be at least 0.05\n");
    return 2;
  }
  if (options.engine.pipeline_groups < 0 || !(group_wait_ms >= 0)) {
    std::fprintf(stderr,
                 "blockserve context: --pipeline-groups and --group-wait-ms must not be "
                 "negative\n");
    return 2;
  }
  if (kv_cache_mb < 1 || options.pool.max_in_flight_per_worker < 1 ||
      options.pool.max_attempts < 1) {
    std::fprintf(stderr,
                 "blockserve context: --kv-cache-mb, --max-in-flight-per-worker and "
                 "--max-block-attempts must be at least 1\n");
    return 2;
  }
  absl::StatusOr<DType> kv_dtype = ParseKvDType(kv_dtype_text);
  if (!kv_dtype.ok()) {
    std::fprintf(stderr, "blockserve context: %s\n",
                 std::string(kv_dtype.status().message()).c_str());
    return 2;
  }
  options.engine.scheduler.kv_dtype = *kv_dtype;
  options.workers = *std::move(targets);
  options.engine.scheduler.kv_cache_bytes = kv_cache_mb << 20;
  options.engine.scheduler.group_wait_s = group_wait_ms * 1e-3;
  return services::RunContextService(options, MakeModelLoader(model_flags));
}

}  // namespace blockserve::cli
