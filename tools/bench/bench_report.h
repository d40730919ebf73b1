// Benchmark measurements and their report, shared by the in-process engine
// benchmark and the gateway load generator of `blockserve bench`.
//
// A run records, per request, the arrival time of every streamed update;
// Summarize() turns that into the figures the paper and serving systems
// quote: generated tokens/s (generated tokens only, prefill time included,
// as the paper defines throughput), total tokens/s (prompt + generated),
// time to first token and inter-token latency percentiles. Value types;
// thread-compatible.
#ifndef BLOCKSERVE_TOOLS_BENCH_BENCH_REPORT_H_
#define BLOCKSERVE_TOOLS_BENCH_BENCH_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace blockserve::bench {

// One request's stream: (seconds since the run started, tokens in the update).
struct RequestTrace {
  double enqueued_s = 0;
  std::vector<std::pair<double, int>> updates;
  int64_t prompt_tokens = 0;
  bool ok = true;
};

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0;
  nlohmann::json ToJson() const;
};
Percentiles ComputePercentiles(std::vector<double> values);

struct BenchSummary {
  int64_t requests = 0;
  int64_t failed_requests = 0;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double elapsed_s = 0;
  double generated_tokens_per_s = 0;
  double total_tokens_per_s = 0;
  Percentiles ttft_s;
  // Per generated token: the gap before an update divided over its tokens
  // (block models stream a block at a time).
  Percentiles itl_s;
  // Gap between consecutive updates of a stream (for block models, the
  // inter-block latency).
  Percentiles inter_update_s;

  // Writes the fields both bench targets report (requests, generated_tokens,
  // elapsed_s, generated_tokens_per_s, total_tokens_per_s, ttft_s, ttft,
  // itl, inter_update) into `out`.
  void AddTo(nlohmann::json& out) const;
};
BenchSummary Summarize(const std::vector<RequestTrace>& traces, double elapsed_s);

// Peak resident memory of this process, in bytes.
int64_t PeakRssBytes();

}  // namespace blockserve::bench

#endif  // BLOCKSERVE_TOOLS_BENCH_BENCH_REPORT_H_
