// Histogram bucket layouts shared by every Blockserve metric, in seconds.
//
// All latency histograms use one of these layouts so that dashboards can
// aggregate and compare them. Pure functions; thread-safe.
#ifndef BLOCKSERVE_SHARED_METRICS_HISTOGRAM_BUCKETS_H_
#define BLOCKSERVE_SHARED_METRICS_HISTOGRAM_BUCKETS_H_

#include <vector>

namespace blockserve::metrics {

// Request-level latencies (request duration, time to first token, queue
// time): 1 ms to 120 s, roughly x2 per bucket.
std::vector<double> RequestLatencyBuckets();

// Per-token and per-block latencies (inter-token, inter-block,
// context-to-worker round trip, block decode time): 100 us to 10 s.
std::vector<double> StepLatencyBuckets();

// Batch sizes (blocks per forward pass): 1 to 1024, powers of two.
std::vector<double> BatchSizeBuckets();

}  // namespace blockserve::metrics

#endif  // BLOCKSERVE_SHARED_METRICS_HISTOGRAM_BUCKETS_H_
