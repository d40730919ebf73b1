#include "shared/metrics/metrics_exposer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"

namespace blockserve::metrics {

absl::StatusOr<std::unique_ptr<MetricsExposer>> MetricsExposer::Start(
    const std::string& host, int port, const MetricsRegistry& registry) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics port ", port, " is out of range"));
  }
  const std::string address = absl::StrCat(host, ":", port);
  std::unique_ptr<prometheus::Exposer> exposer;
  try {  // civetweb reports a failed bind by throwing
    exposer = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  exposer->RegisterCollectable(registry.registry(), "/metrics");
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(absl::StrCat("metrics server on ", address, " has no port"));
  }
  return std::unique_ptr<MetricsExposer>(new MetricsExposer(std::move(exposer), host, ports[0]));
}

MetricsExposer::MetricsExposer(std::unique_ptr<prometheus::Exposer> exposer, std::string host,
                               int port)
    : exposer_(std::move(exposer)), host_(std::move(host)), port_(port) {}

MetricsExposer::~MetricsExposer() {
  // civetweb's stop waits for its accept loop, which polls with a 2 s
  // timeout; connecting to the port wakes it at once. Poke until it is down.
  std::atomic<bool> stopped{false};
  std::thread poke([&] {
    while (!stopped.load()) {
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(port_));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (inet_pton(AF_INET, host_.c_str(), &addr.sin_addr) != 1 || host_ == "0.0.0.0") {
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      }
      if (fd >= 0) {
        connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
        close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();
  stopped.store(true);
  poke.join();
}

std::string MetricsExposer::url() const {
  return absl::StrCat("http://", host_, ":", port_, "/metrics");
}

}  // namespace blockserve::metrics
