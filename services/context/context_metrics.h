// The context service's Prometheus metrics (names and meanings in
// docs/metrics.md), shared by its engine thread, its worker pool and its
// handlers. Declared once at start-up; the references stay valid as long as
// the registry. Thread-safe (prometheus-cpp metrics are atomic).
#ifndef BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_METRICS_H_
#define BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_METRICS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "shared/metrics/metrics_registry.h"

namespace blockserve::services {

struct ContextMetrics {
  explicit ContextMetrics(metrics::MetricsRegistry& registry);

  // Sessions.
  prometheus::Gauge& active_sessions;
  prometheus::Gauge& waiting_sessions;
  prometheus::Gauge& kv_used_bytes;
  prometheus::Gauge& kv_capacity_bytes;
  prometheus::Family<prometheus::Counter>& sessions_total;  // {outcome, code}
  prometheus::Counter& prompt_tokens;
  prometheus::Counter& generated_tokens;
  prometheus::Histogram& queue_seconds;        // arrival to first context embedding
  prometheus::Histogram& inter_block_seconds;  // between consecutive blocks of a session
  prometheus::Histogram& session_seconds;      // arrival to the end

  // Block-decoder batching.
  prometheus::Gauge& batch_size;  // blocks in the last forward pass
  prometheus::Histogram& batch_size_histogram;
  prometheus::Histogram& step_seconds;  // one block-decoder forward pass
  prometheus::Gauge& pipeline_groups;
  prometheus::Counter& straggler_steps;  // a group stepped without a late block

  // Blocks and workers.
  prometheus::Gauge& queued_blocks;     // waiting for a worker
  prometheus::Gauge& in_flight_blocks;  // at a worker
  prometheus::Gauge& ready_workers;
  prometheus::Gauge& configured_workers;      // in the set, ready or not, not removed
  prometheus::Histogram& round_trip_seconds;  // dispatch to result
  prometheus::Counter& block_retries;         // re-dispatched after a failure
  prometheus::Family<prometheus::Counter>& blocks_dispatched;  // {worker}
  prometheus::Family<prometheus::Gauge>& worker_in_flight;     // {worker}

  void CountSession(absl::string_view outcome, absl::string_view code);
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_METRICS_H_
