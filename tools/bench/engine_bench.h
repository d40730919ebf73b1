// The in-process target of `blockserve bench`: runs `batch` requests of
// random prompts through an Engine at once (EOS off, exactly gen_len tokens
// each) and reports throughput, latency percentiles and memory.
// Not thread-safe; one run at a time per model.
#ifndef BLOCKSERVE_TOOLS_BENCH_ENGINE_BENCH_H_
#define BLOCKSERVE_TOOLS_BENCH_ENGINE_BENCH_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "shared/engine/engine.h"
#include "shared/model/model.h"
#include "tools/bench/bench_report.h"

namespace blockserve::bench {

struct EngineBenchOptions {
  int prompt_len = 128;
  int gen_len = 128;
  int batch = 1;
  uint64_t seed = 0;
  int max_step_rows = 0;         // prefill rows per engine step (0: engine default)
  DType kv_dtype = DType::kF32;  // the long-lived KV cache's entries (F32 or F16)
  bool progress = false;         // a line on stderr every 10 s
};

// KV-cache bytes one sequence of `tokens` tokens needs (K and V; the
// long-lived cache in `kv_dtype`; block models: the block decoder's
// per-block cache plus one block's F32 local cache).
int64_t KvBytesPerSequence(const ModelConfig& config, int64_t tokens, DType kv_dtype = DType::kF32);

// Runs one measurement point and returns its JSON object (see docs/benchmarks.md).
absl::StatusOr<nlohmann::json> RunEngineBench(const Model& model,
                                              const EngineBenchOptions& options);

}  // namespace blockserve::bench

#endif  // BLOCKSERVE_TOOLS_BENCH_ENGINE_BENCH_H_
