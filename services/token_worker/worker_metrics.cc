#include "services/token_worker/worker_metrics.h"

#include "shared/metrics/histogram_buckets.h"

namespace blockserve::services {

WorkerMetrics::WorkerMetrics(metrics::MetricsRegistry& r)
    : queued_blocks(r.Gauge("blockserve_worker_queued_blocks",
                            "Blocks received and waiting for a slot in the decode batch")),
      active_blocks(r.Gauge("blockserve_worker_active_blocks",
                            "Blocks being decoded (in the continuous batch)")),
      batch_size(
          r.Gauge("blockserve_worker_batch_size", "Blocks in the last token-decoder forward pass")),
      connections(
          r.Gauge("blockserve_worker_connections", "Open block streams from context services")),
      batch_size_histogram(r.Histogram("blockserve_worker_batch_size_blocks",
                                       "Blocks per token-decoder forward pass",
                                       metrics::BatchSizeBuckets())),
      block_seconds(r.Histogram("blockserve_worker_block_seconds",
                                "Time from a block's arrival at the worker to its result",
                                metrics::StepLatencyBuckets())),
      step_seconds(r.Histogram("blockserve_worker_step_seconds",
                               "Duration of one token-decoder forward pass over the batch",
                               metrics::StepLatencyBuckets())),
      blocks_ok(r.Counter("blockserve_worker_blocks_total", "Blocks finished, by outcome",
                          {{"outcome", "ok"}})),
      blocks_failed(r.Counter("blockserve_worker_blocks_total", "Blocks finished, by outcome",
                              {{"outcome", "error"}})),
      blocks_cancelled(r.Counter("blockserve_worker_blocks_total", "Blocks finished, by outcome",
                                 {{"outcome", "cancelled"}})),
      tokens(r.Counter("blockserve_worker_generated_tokens_total", "Tokens decoded")) {}

}  // namespace blockserve::services
