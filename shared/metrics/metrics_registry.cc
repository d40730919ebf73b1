#include "shared/metrics/metrics_registry.h"

#include "prometheus/text_serializer.h"
#include "shared/common/logging.h"

namespace blockserve::metrics {

MetricsRegistry::MetricsRegistry()
    : registry_(
          std::make_shared<prometheus::Registry>(prometheus::Registry::InsertBehavior::Merge)) {}

void MetricsRegistry::CheckType(const std::string& name, Type type) {
  CHECK(name.rfind("blockserve_", 0) == 0) << "metric " << name << " must be named blockserve_*";
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, inserted] = types_.emplace(name, type);
  CHECK(inserted || it->second == type) << "metric " << name << " declared with two types";
}

prometheus::Family<prometheus::Counter>& MetricsRegistry::CounterFamily(const std::string& name,
                                                                        const std::string& help) {
  CheckType(name, Type::kCounter);
  return prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
}

prometheus::Family<prometheus::Gauge>& MetricsRegistry::GaugeFamily(const std::string& name,
                                                                    const std::string& help) {
  CheckType(name, Type::kGauge);
  return prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
}

prometheus::Family<prometheus::Histogram>& MetricsRegistry::HistogramFamily(
    const std::string& name, const std::string& help) {
  CheckType(name, Type::kHistogram);
  return prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
}

prometheus::Counter& MetricsRegistry::Counter(const std::string& name, const std::string& help,
                                              const prometheus::Labels& labels) {
  return CounterFamily(name, help).Add(labels);
}

prometheus::Gauge& MetricsRegistry::Gauge(const std::string& name, const std::string& help,
                                          const prometheus::Labels& labels) {
  return GaugeFamily(name, help).Add(labels);
}

prometheus::Histogram& MetricsRegistry::Histogram(const std::string& name, const std::string& help,
                                                  const std::vector<double>& buckets,
                                                  const prometheus::Labels& labels) {
  return HistogramFamily(name, help).Add(labels, buckets);
}

std::string MetricsRegistry::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace blockserve::metrics
