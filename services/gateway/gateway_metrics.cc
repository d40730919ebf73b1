#include "services/gateway/gateway_metrics.h"

#include "shared/metrics/histogram_buckets.h"

namespace blockserve::services {

GatewayMetrics::GatewayMetrics(metrics::MetricsRegistry& r)
    : requests_total(r.CounterFamily("blockserve_gateway_requests_total",
                                     "Finished requests by method, outcome and status code")),
      request_seconds(r.Histogram("blockserve_gateway_request_duration_seconds",
                                  "Generate requests: arrival to the last message",
                                  metrics::RequestLatencyBuckets())),
      time_to_first_token_seconds(r.Histogram("blockserve_gateway_time_to_first_token_seconds",
                                              "Generate requests: arrival to the first token",
                                              metrics::RequestLatencyBuckets())),
      inter_token_seconds(r.Histogram(
          "blockserve_gateway_inter_token_seconds",
          "Generate requests: mean time between tokens after the first (one sample per request)",
          metrics::StepLatencyBuckets())),
      queue_seconds(r.Histogram("blockserve_gateway_queue_seconds",
                                "Generate requests: time waiting for admission",
                                metrics::RequestLatencyBuckets())),
      prompt_tokens(r.Counter("blockserve_gateway_prompt_tokens_total",
                              "Prompt tokens of admitted Generate requests")),
      generated_tokens(
          r.Counter("blockserve_gateway_generated_tokens_total", "Tokens streamed to clients")),
      running_requests(
          r.Gauge("blockserve_gateway_active_requests", "Generate requests admitted and running")),
      queued_requests(
          r.Gauge("blockserve_gateway_queued_requests", "Generate requests waiting for admission")),
      replica_up(r.GaugeFamily("blockserve_gateway_context_replica_up",
                               "1 when the context replica answers and serves this model")),
      replica_outstanding(r.GaugeFamily("blockserve_gateway_context_replica_requests",
                                        "Generate requests this gateway has open on a replica")) {}

void GatewayMetrics::CountRequest(absl::string_view method, absl::string_view outcome,
                                  absl::string_view code) {
  requests_total
      .Add({{"method", std::string(method)},
            {"outcome", std::string(outcome)},
            {"code", std::string(code)}})
      .Increment();
}

}  // namespace blockserve::services
