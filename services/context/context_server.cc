#include "services/context/context_server.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/common/proto_convert.h"
#include "services/context/context_admin_service.h"
#include "services/context/context_metrics.h"
#include "services/context/context_service.h"
#include "shared/common/logging.h"
#include "shared/metrics/metrics_registry.h"

namespace blockserve::services {

absl::StatusOr<std::set<std::string>> ParseAddressList(const std::string& text,
                                                       const std::string& flag) {
  std::set<std::string> addresses;
  for (absl::string_view piece : absl::StrSplit(text, ',')) {
    piece = absl::StripAsciiWhitespace(piece);
    if (piece.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " has an empty address in '", text, "'"));
    }
    if (piece.find(':') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": '", piece, "' is not HOST:PORT"));
    }
    addresses.insert(std::string(piece));
  }
  return addresses;
}

int RunContextService(const ContextServerOptions& options, const ModelLoader& load_model) {
  metrics::MetricsRegistry registry;
  ContextMetrics context_metrics(registry);
  ServingState state;
  ContextServiceImpl service(&state);
  ContextAdminServiceImpl admin(options.admin_any_peer);
  auto runner = ServerRunner::Start({.role = "context", .flags = options.server},
                                    {&service, &admin}, &state, &registry);
  if (!runner.ok()) {
    LOG(ERROR) << "context: " << runner.status();
    return 1;
  }
  absl::StatusOr<ServiceModel> model = load_model(BlockDecoderOnly());
  if (!model.ok()) {
    LOG(ERROR) << "context: cannot load the model: " << model.status();
    return 1;
  }
  const Model& loaded = *model->model;
  if (!loaded.is_block() || loaded.block_decoder() == nullptr) {
    LOG(ERROR) << "context: " << loaded.directory()
               << " is not a Block Transformer: the context service serves only block models";
    return 1;
  }
  v1::ModelInfo info;
  ToProto(loaded.config(), std::filesystem::path(loaded.directory()).filename().string(), &info);

  WorkerPool::Options pool_options = options.pool;
  pool_options.model = info;
  WorkerPool pool(pool_options, &context_metrics);
  // Static sets are applied here; DNS names by the discovery thread (its
  // first round starts at once).
  std::unique_ptr<WorkerDiscovery> discovery;
  if (options.workers.uses_dns()) {
    discovery = std::make_unique<WorkerDiscovery>(
        options.workers, WorkerDiscovery::Options{.interval_s = options.worker_resolve_interval_s},
        [&pool](const std::set<std::string>& addresses) { pool.UpdateWorkers(addresses); });
  } else {
    pool.UpdateWorkers(options.workers.static_addresses);
  }
  auto engine = ContextEngine::Create(*loaded.block_decoder(), *model->backend, loaded.config(),
                                      options.engine, &pool, &context_metrics);
  if (!engine.ok()) {
    LOG(ERROR) << "context: " << engine.status();
    if (discovery) discovery->Stop();
    pool.Shutdown();
    return 1;
  }
  service.SetEngine(engine->get(), info);
  admin.Attach(&pool, options.workers.uses_dns(), [&service] { service.AnnounceDrain(); });
  (*runner)->SetServing(true);
  std::vector<std::string> names;
  for (const DnsWorkerName& name : options.workers.dns_names) names.push_back(name.ToString());
  LOG(INFO) << "context: serving " << loaded.directory() << " on " << model->backend->Describe()
            << " with " << options.workers.static_addresses.size() << " token worker(s)"
            << (names.empty() ? ""
                              : absl::StrCat(" and the workers of ", absl::StrJoin(names, ","),
                                             " (re-resolved every ",
                                             options.worker_resolve_interval_s, " s)"));
  ContextEngine* context = engine->get();
  WorkerDiscovery* discovery_thread = discovery.get();
  ServerRunner::Hooks hooks;
  hooks.idle = [context] { return context->open_sessions() == 0; };
  hooks.stop = [context, &pool, discovery_thread] {
    if (discovery_thread != nullptr) discovery_thread->Stop();
    context->Shutdown();
    pool.Shutdown();
  };
  return (*runner)->Wait(hooks);
}

}  // namespace blockserve::services
