#include "services/context/context_metrics.h"

#include "shared/metrics/histogram_buckets.h"

namespace blockserve::services {

ContextMetrics::ContextMetrics(metrics::MetricsRegistry& r)
    : active_sessions(
          r.Gauge("blockserve_context_active_sessions", "Sessions admitted to the block KV cache")),
      waiting_sessions(r.Gauge("blockserve_context_waiting_sessions",
                               "Sessions queued until the KV cache can hold them")),
      kv_used_bytes(r.Gauge("blockserve_context_kv_cache_used_bytes",
                            "Block KV cache bytes held by sessions")),
      kv_capacity_bytes(
          r.Gauge("blockserve_context_kv_cache_capacity_bytes", "Block KV cache budget in bytes")),
      sessions_total(r.CounterFamily("blockserve_context_sessions_total",
                                     "Finished sessions by outcome and status code")),
      prompt_tokens(r.Counter("blockserve_context_prompt_tokens_total",
                              "Prompt tokens of accepted sessions")),
      generated_tokens(r.Counter("blockserve_context_generated_tokens_total",
                                 "Tokens generated and sent to the gateway")),
      queue_seconds(r.Histogram("blockserve_context_queue_seconds",
                                "Time from a session's arrival to its first context embedding "
                                "(waiting for KV memory plus prefill)",
                                metrics::RequestLatencyBuckets())),
      inter_block_seconds(r.Histogram("blockserve_context_inter_block_seconds",
                                      "Time between consecutive decoded blocks of a session",
                                      metrics::StepLatencyBuckets())),
      session_seconds(r.Histogram("blockserve_context_session_seconds",
                                  "Time from a session's arrival to its end",
                                  metrics::RequestLatencyBuckets())),
      batch_size(r.Gauge("blockserve_context_batch_size",
                         "Blocks in the last block-decoder forward pass")),
      batch_size_histogram(r.Histogram("blockserve_context_batch_size_blocks",
                                       "Blocks per block-decoder forward pass",
                                       metrics::BatchSizeBuckets())),
      step_seconds(r.Histogram("blockserve_context_step_seconds",
                               "Duration of one block-decoder forward pass",
                               metrics::StepLatencyBuckets())),
      pipeline_groups(r.Gauge("blockserve_context_pipeline_groups",
                              "Session groups the block decoder steps in turn")),
      straggler_steps(r.Counter("blockserve_context_straggler_steps_total",
                                "Block-decoder passes that left a late block of their group "
                                "behind (--group-wait-ms passed)")),
      queued_blocks(r.Gauge("blockserve_context_queued_blocks",
                            "Context embeddings waiting for a token worker")),
      in_flight_blocks(r.Gauge("blockserve_context_in_flight_blocks",
                               "Blocks sent to token workers and not yet back")),
      ready_workers(r.Gauge("blockserve_context_ready_workers",
                            "Token workers connected and accepting blocks")),
      configured_workers(r.Gauge("blockserve_context_configured_workers",
                                 "Token workers in the worker set (from --workers, DNS discovery "
                                 "or ContextAdmin), connected or not; draining ones excluded")),
      round_trip_seconds(r.Histogram("blockserve_context_worker_round_trip_seconds",
                                     "Time from sending a block to a token worker to its result",
                                     metrics::StepLatencyBuckets())),
      block_retries(r.Counter("blockserve_context_block_retries_total",
                              "Blocks re-dispatched after a worker stream broke or timed out")),
      blocks_dispatched(r.CounterFamily("blockserve_context_blocks_dispatched_total",
                                        "Blocks sent to each token worker")),
      worker_in_flight(r.GaugeFamily("blockserve_context_worker_in_flight_blocks",
                                     "Blocks in flight at each token worker")) {}

void ContextMetrics::CountSession(absl::string_view outcome, absl::string_view code) {
  sessions_total.Add({{"outcome", std::string(outcome)}, {"code", std::string(code)}}).Increment();
}

}  // namespace blockserve::services
