// The gateway's Prometheus metrics (names and meanings in docs/metrics.md).
// Declared once at start-up; the references stay valid as long as the
// registry. Thread-safe (prometheus-cpp metrics are atomic).
#ifndef BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_METRICS_H_
#define BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_METRICS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "shared/metrics/metrics_registry.h"

namespace blockserve::services {

struct GatewayMetrics {
  explicit GatewayMetrics(metrics::MetricsRegistry& registry);

  prometheus::Family<prometheus::Counter>& requests_total;  // {method, outcome, code}
  prometheus::Histogram& request_seconds;
  prometheus::Histogram& time_to_first_token_seconds;
  prometheus::Histogram& inter_token_seconds;
  prometheus::Histogram& queue_seconds;
  prometheus::Counter& prompt_tokens;
  prometheus::Counter& generated_tokens;
  prometheus::Gauge& running_requests;
  prometheus::Gauge& queued_requests;
  prometheus::Family<prometheus::Gauge>& replica_up;           // {replica}
  prometheus::Family<prometheus::Gauge>& replica_outstanding;  // {replica}

  void CountRequest(absl::string_view method, absl::string_view outcome, absl::string_view code);
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_METRICS_H_
