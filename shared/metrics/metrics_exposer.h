// MetricsExposer: serves a MetricsRegistry at http://HOST:PORT/metrics in
// the Prometheus text format (prometheus-cpp's civetweb exposer).
//
// Port 0 picks a free port; port() tells which. Owns its HTTP threads,
// which stop when it is destroyed (promptly: the destructor wakes civetweb's
// accept loop instead of waiting out its 2 s poll). Thread-safe after
// Start(). IPv4 hosts only for the wake-up (others just stop slower).
#ifndef BLOCKSERVE_SHARED_METRICS_METRICS_EXPOSER_H_
#define BLOCKSERVE_SHARED_METRICS_METRICS_EXPOSER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "shared/metrics/metrics_registry.h"

namespace prometheus {
class Exposer;
}

namespace blockserve::metrics {

class MetricsExposer {
 public:
  // UNAVAILABLE when the address cannot be bound (the message names it).
  static absl::StatusOr<std::unique_ptr<MetricsExposer>> Start(const std::string& host, int port,
                                                               const MetricsRegistry& registry);
  ~MetricsExposer();

  int port() const { return port_; }
  // "http://HOST:PORT/metrics".
  std::string url() const;

 private:
  MetricsExposer(std::unique_ptr<prometheus::Exposer> exposer, std::string host, int port);

  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string host_;
  int port_;
};

}  // namespace blockserve::metrics

#endif  // BLOCKSERVE_SHARED_METRICS_METRICS_EXPOSER_H_
