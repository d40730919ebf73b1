// The token worker's Prometheus metrics (names and meanings in
// docs/metrics.md). Declared once at start-up; the references stay valid as
// long as the registry. Thread-safe (prometheus-cpp metrics are atomic).
#ifndef BLOCKSERVE_SERVICES_TOKEN_WORKER_WORKER_METRICS_H_
#define BLOCKSERVE_SERVICES_TOKEN_WORKER_WORKER_METRICS_H_

#include "shared/metrics/metrics_registry.h"

namespace blockserve::services {

struct WorkerMetrics {
  explicit WorkerMetrics(metrics::MetricsRegistry& registry);

  prometheus::Gauge& queued_blocks;  // waiting for a batch slot
  prometheus::Gauge& active_blocks;  // being decoded
  prometheus::Gauge& batch_size;     // blocks in the last forward pass
  prometheus::Gauge& connections;    // context-service streams
  prometheus::Histogram& batch_size_histogram;
  prometheus::Histogram& block_seconds;  // arrival to result, per block
  prometheus::Histogram& step_seconds;   // one token-decoder forward pass
  prometheus::Counter& blocks_ok;
  prometheus::Counter& blocks_failed;
  prometheus::Counter& blocks_cancelled;
  prometheus::Counter& tokens;  // tokens decoded
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_TOKEN_WORKER_WORKER_METRICS_H_
