#include "tools/bench/bench_report.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace blockserve::bench {

nlohmann::json Percentiles::ToJson() const {
  return {{"p50", p50}, {"p90", p90}, {"p99", p99}, {"mean", mean}};
}

void BenchSummary::AddTo(nlohmann::json& out) const {
  out["requests"] = requests;
  out["generated_tokens"] = generated_tokens;
  out["elapsed_s"] = elapsed_s;
  out["generated_tokens_per_s"] = generated_tokens_per_s;
  out["total_tokens_per_s"] = total_tokens_per_s;
  out["ttft_s"] = ttft_s.p50;
  out["ttft"] = ttft_s.ToJson();
  out["itl"] = itl_s.ToJson();
  out["inter_update"] = inter_update_s.ToJson();
}

Percentiles ComputePercentiles(std::vector<double> values) {
  Percentiles p;
  if (values.empty()) return p;
  std::sort(values.begin(), values.end());
  // Nearest-rank percentiles.
  auto rank = [&](double q) {
    const size_t index = static_cast<size_t>(std::ceil(q * values.size())) - 1;
    return values[std::min(values.size() - 1, std::max<size_t>(0, index))];
  };
  p.p50 = rank(0.50);
  p.p90 = rank(0.90);
  p.p99 = rank(0.99);
  p.mean = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  return p;
}

BenchSummary Summarize(const std::vector<RequestTrace>& traces, double elapsed_s) {
  BenchSummary s;
  s.elapsed_s = elapsed_s;
  std::vector<double> ttft, itl, inter_update;
  for (const RequestTrace& trace : traces) {
    ++s.requests;
    if (!trace.ok) ++s.failed_requests;
    s.prompt_tokens += trace.prompt_tokens;
    double previous = -1;
    for (const auto& [time, tokens] : trace.updates) {
      if (tokens == 0) continue;
      s.generated_tokens += tokens;
      if (previous < 0) {
        ttft.push_back(time - trace.enqueued_s);
      } else {
        const double gap = time - previous;
        inter_update.push_back(gap);
        for (int i = 0; i < tokens; ++i) itl.push_back(gap / tokens);
      }
      previous = time;
    }
  }
  if (elapsed_s > 0) {
    s.generated_tokens_per_s = s.generated_tokens / elapsed_s;
    s.total_tokens_per_s = (s.generated_tokens + s.prompt_tokens) / elapsed_s;
  }
  s.ttft_s = ComputePercentiles(std::move(ttft));
  s.itl_s = ComputePercentiles(std::move(itl));
  s.inter_update_s = ComputePercentiles(std::move(inter_update));
  return s;
}

int64_t PeakRssBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

}  // namespace blockserve::bench
