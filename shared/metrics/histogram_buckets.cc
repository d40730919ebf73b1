#include "shared/metrics/histogram_buckets.h"

namespace blockserve::metrics {

std::vector<double> RequestLatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,  0.25, 0.5,
          1.0,   2.5,    5.0,   10.0, 20.0,  30.0, 60.0, 120.0};
}

std::vector<double> StepLatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
}

std::vector<double> BatchSizeBuckets() { return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}; }

}  // namespace blockserve::metrics
