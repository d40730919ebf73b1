#include "tools/bench/engine_bench.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>

#include "shared/common/status_macros.h"

namespace blockserve::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kProgressEveryS = 10;

int64_t StackKvBytes(const NeoxStackConfig& stack, int64_t entries, DType dtype) {
  return entries * 2 * stack.num_layers * int64_t{stack.num_heads} * stack.head_dim *
         static_cast<int64_t>(DTypeSize(dtype));
}

}  // namespace

int64_t KvBytesPerSequence(const ModelConfig& config, int64_t tokens, DType kv_dtype) {
  if (config.kind == ModelKind::kVanilla) return StackKvBytes(config.vanilla, tokens, kv_dtype);
  const int64_t blocks = (tokens + config.block_length - 1) / config.block_length;
  return StackKvBytes(config.block_decoder, blocks, kv_dtype) +
         StackKvBytes(config.token_decoder, config.expansion_ratio + config.block_length - 1,
                      DType::kF32);
}

absl::StatusOr<nlohmann::json> RunEngineBench(const Model& model,
                                              const EngineBenchOptions& options) {
  const ModelConfig& config = model.config();
  if (options.prompt_len < 1 || options.gen_len < 1 || options.batch < 1) {
    return absl::InvalidArgumentError("prompt length, generation length and batch must be >= 1");
  }
  // Size the engine for the whole batch: every sequence admitted at once.
  EngineOptions engine_options;
  const int64_t total_tokens = options.prompt_len + options.gen_len;
  const int64_t kv_needed =
      options.batch * (KvBytesPerSequence(config, total_tokens, options.kv_dtype) * 5 / 4) +
      (int64_t{64} << 20);
  engine_options.context.kv_dtype = options.kv_dtype;
  engine_options.vanilla.kv_dtype = options.kv_dtype;
  engine_options.context.max_sessions = options.batch;
  engine_options.context.kv_cache_bytes =
      std::max(engine_options.context.kv_cache_bytes, kv_needed);
  engine_options.token_decoder.max_active_blocks = options.batch;
  engine_options.vanilla.max_sessions = options.batch;
  engine_options.vanilla.kv_cache_bytes =
      std::max(engine_options.vanilla.kv_cache_bytes, kv_needed);
  if (options.max_step_rows > 0) {
    engine_options.context.max_step_blocks = options.max_step_rows;
    engine_options.vanilla.max_step_tokens = options.max_step_rows;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(model, engine_options));

  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<int32_t> token(1, config.vocab_size - 1);
  std::vector<RequestTrace> traces(options.batch);
  std::mutex mutex;
  std::condition_variable done;
  int remaining = options.batch;
  int64_t generated = 0;
  absl::Status failure;
  int64_t kv_peak = 0;
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < options.batch; ++i) {
    GenerationRequest request;
    for (int t = 0; t < options.prompt_len; ++t) request.prompt.push_back(token(rng));
    request.max_new_tokens = options.gen_len;
    request.stop_at_eos = false;
    request.sampling.seed = options.seed + i;
    traces[i].prompt_tokens = options.prompt_len;
    traces[i].enqueued_s = std::chrono::duration<double>(Clock::now() - start).count();
    auto id = engine->Enqueue(std::move(request), [&, i](GenerationUpdate update) {
      const double now = std::chrono::duration<double>(Clock::now() - start).count();
      std::lock_guard<std::mutex> lock(mutex);
      traces[i].updates.push_back({now, static_cast<int>(update.tokens.size())});
      generated += static_cast<int64_t>(update.tokens.size());
      if (update.finished) {
        if (!update.status.ok()) {
          traces[i].ok = false;
          failure = update.status;
        }
        if (--remaining == 0) done.notify_all();
      }
    });
    if (!id.ok()) return id.status();
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    double next_report_s = kProgressEveryS;
    while (!done.wait_for(lock, std::chrono::milliseconds(20), [&] { return remaining == 0; })) {
      kv_peak = std::max(kv_peak, engine->stats().kv_used_bytes);
      const double now = std::chrono::duration<double>(Clock::now() - start).count();
      if (options.progress && now >= next_report_s) {
        std::fprintf(stderr, "bench:   %.0f s: %lld of %lld tokens generated\n", now,
                     static_cast<long long>(generated),
                     static_cast<long long>(int64_t{options.batch} * options.gen_len));
        next_report_s += kProgressEveryS;
      }
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  engine->Shutdown();
  if (!failure.ok()) return failure;

  const BenchSummary summary = Summarize(traces, elapsed);
  nlohmann::json out;
  out["target"] = "engine";
  out["model"] = model.directory();
  out["kind"] = std::string(ModelKindName(config.kind));
  out["non_embedding_params"] = config.NonEmbeddingParameters();
  out["device"] = model.backend().Describe();
  out["prompt_len"] = options.prompt_len;
  out["gen_len"] = options.gen_len;
  out["batch"] = options.batch;
  summary.AddTo(out);
  out["kv_bytes_per_seq"] = KvBytesPerSequence(config, total_tokens, options.kv_dtype);
  out["kv_dtype"] = DTypeName(options.kv_dtype);
  out["kv_reserved_peak_bytes"] = kv_peak;
  out["peak_rss_bytes"] = PeakRssBytes();
  return out;
}

}  // namespace blockserve::bench
