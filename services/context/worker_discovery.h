// Token-worker membership for the context service: the --workers flag
// (static HOST:PORT entries and DNS names re-resolved periodically) and the
// WorkerDiscovery thread that turns DNS answers into
// WorkerPool::UpdateWorkers calls.
//
//   --workers=10.0.0.5:7001,10.0.0.6:7001                     static set
//   --workers=dns:///blockserve-worker-headless:7001          every address
//       the name resolves to (a Kubernetes headless Service: one A record
//       per ready worker pod), re-resolved every --worker-resolve-interval
//
// Static entries and DNS names may be mixed; the worker set is their union.
// Resolution runs on WorkerDiscovery's own thread (getaddrinfo blocks; it
// never runs in a gRPC reaction). A name that fails to resolve keeps the
// addresses it last resolved to: a DNS hiccup must not drain every worker
// (an address that really went away fails to connect and gets no blocks).
// A name that resolves to nothing also keeps its last answer (a headless
// Service with no ready pod answers NXDOMAIN).
//
// Thread-safety: WorkerDiscovery's methods may be called from any thread;
// the update callback runs on the discovery thread, one call at a time.
#ifndef BLOCKSERVE_SERVICES_CONTEXT_WORKER_DISCOVERY_H_
#define BLOCKSERVE_SERVICES_CONTEXT_WORKER_DISCOVERY_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace blockserve::services {

// A DNS name whose addresses are token workers listening on `port`.
struct DnsWorkerName {
  std::string host;
  int port = 0;

  std::string ToString() const;  // "dns:///HOST:PORT"
  bool operator<(const DnsWorkerName& other) const {
    return host != other.host ? host < other.host : port < other.port;
  }
};

// The parsed --workers flag.
struct WorkerTargets {
  std::set<std::string> static_addresses;  // HOST:PORT
  std::vector<DnsWorkerName> dns_names;

  bool uses_dns() const { return !dns_names.empty(); }
};

// Parses "HOST:PORT,dns:///NAME:PORT,..." (spaces allowed around entries).
// INVALID_ARGUMENT naming `flag` for an empty list or entry, a missing or
// bad port, or a dns: entry without a name.
absl::StatusOr<WorkerTargets> ParseWorkerTargets(const std::string& text, const std::string& flag);

// Resolves `host` to "IP:PORT" addresses (IPv6 as "[IP]:PORT"), sorted and
// without duplicates. Blocking.
using WorkerResolver =
    std::function<absl::StatusOr<std::vector<std::string>>(const std::string& host, int port)>;

// The system resolver (getaddrinfo, TCP, IPv4 and IPv6; honours the
// resolv.conf search list, so a bare Service name resolves in the pod's
// namespace). NOT_FOUND when the name has no address, UNAVAILABLE on other
// resolver failures.
absl::StatusOr<std::vector<std::string>> ResolveWithGetaddrinfo(const std::string& host, int port);

class WorkerDiscovery {
 public:
  using Update = std::function<void(const std::set<std::string>& addresses)>;

  struct Options {
    double interval_s = 5.0;
    WorkerResolver resolve;  // empty: ResolveWithGetaddrinfo
  };

  // Starts the thread, which resolves at once and then every interval, and
  // calls `update` with the whole worker set whenever it changes (the first
  // round always calls it).
  WorkerDiscovery(WorkerTargets targets, Options options, Update update);
  ~WorkerDiscovery();  // Stop()

  // Waits for the current round (if any) to end and stops the thread.
  // Idempotent.
  void Stop();

  // The set last passed to `update`, and the number of rounds finished.
  std::set<std::string> current() const;
  int rounds() const;

  // Waits until at least `rounds` rounds have finished or `timeout_s`
  // passed; true when they have.
  bool WaitForRounds(int rounds, double timeout_s) const;

 private:
  void Loop();
  // One round: resolves every name, returns the union with the static set.
  std::set<std::string> ResolveAll();

  const WorkerTargets targets_;
  const Options options_;
  const Update update_;

  // Last successful answer per name; only the discovery thread touches it.
  std::map<DnsWorkerName, std::vector<std::string>> last_answer_;
  std::map<DnsWorkerName, bool> failing_;  // for logging a failure once

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool stop_ = false;              // guarded by mutex_
  int rounds_ = 0;                 // guarded by mutex_
  std::set<std::string> current_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_WORKER_DISCOVERY_H_
