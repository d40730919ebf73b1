// MetricsRegistry: the one place a Blockserve process declares its
// Prometheus metrics, over prometheus-cpp.
//
// Each service builds a registry at start-up, declares its metric families
// (names blockserve_*, histograms in seconds, every one listed in
// docs/metrics.md) and keeps references to the returned time series, which
// live as long as the registry. Declaring a family twice with the same name
// and type returns the same family (so two parts of a service may share
// one); a different type under the same name is a programming error (CHECK).
//
// Thread-safe: declaring metrics and updating them may happen from any
// thread (prometheus-cpp's counters, gauges and histograms are atomic).
#ifndef BLOCKSERVE_SHARED_METRICS_METRICS_REGISTRY_H_
#define BLOCKSERVE_SHARED_METRICS_METRICS_REGISTRY_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/labels.h"
#include "prometheus/registry.h"

namespace blockserve::metrics {

class MetricsRegistry {
 public:
  MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // A family, for metrics with label values known only at run time.
  prometheus::Family<prometheus::Counter>& CounterFamily(const std::string& name,
                                                         const std::string& help);
  prometheus::Family<prometheus::Gauge>& GaugeFamily(const std::string& name,
                                                     const std::string& help);
  prometheus::Family<prometheus::Histogram>& HistogramFamily(const std::string& name,
                                                             const std::string& help);

  // One time series of a family (created on first use).
  prometheus::Counter& Counter(const std::string& name, const std::string& help,
                               const prometheus::Labels& labels = {});
  prometheus::Gauge& Gauge(const std::string& name, const std::string& help,
                           const prometheus::Labels& labels = {});
  prometheus::Histogram& Histogram(const std::string& name, const std::string& help,
                                   const std::vector<double>& buckets,
                                   const prometheus::Labels& labels = {});

  // The underlying registry, for the exposer.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // The whole registry in the Prometheus text format (what /metrics serves).
  std::string Serialize() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  void CheckType(const std::string& name, Type type);

  std::shared_ptr<prometheus::Registry> registry_;
  std::mutex mutex_;
  std::map<std::string, Type> types_;  // guarded by mutex_
};

}  // namespace blockserve::metrics

#endif  // BLOCKSERVE_SHARED_METRICS_METRICS_REGISTRY_H_
