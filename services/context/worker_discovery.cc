#include "services/context/worker_discovery.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "shared/common/logging.h"
#include "shared/common/status_macros.h"

namespace blockserve::services {
namespace {

constexpr absl::string_view kDnsScheme = "dns:///";

// Splits "HOST:PORT" at the last colon; the port must be 1..65535.
absl::Status SplitNamePort(absl::string_view entry, const std::string& flag, std::string* host,
                           int* port) {
  const size_t colon = entry.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": '", entry, "' is not ", kDnsScheme, "NAME:PORT"));
  }
  *host = std::string(entry.substr(0, colon));
  if (!absl::SimpleAtoi(entry.substr(colon + 1), port) || *port < 1 || *port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": '", entry, "' has no port in 1..65535"));
  }
  if (host->find_first_of("/:[]") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": '", *host, "' is not a DNS name"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string DnsWorkerName::ToString() const { return absl::StrCat(kDnsScheme, host, ":", port); }

absl::StatusOr<WorkerTargets> ParseWorkerTargets(const std::string& text, const std::string& flag) {
  WorkerTargets targets;
  std::set<DnsWorkerName> seen;
  for (absl::string_view piece : absl::StrSplit(text, ',')) {
    piece = absl::StripAsciiWhitespace(piece);
    if (piece.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " has an empty entry in '", text, "'"));
    }
    if (absl::ConsumePrefix(&piece, kDnsScheme)) {
      DnsWorkerName name;
      RETURN_IF_ERROR(SplitNamePort(piece, flag, &name.host, &name.port));
      if (seen.insert(name).second) targets.dns_names.push_back(name);
      continue;
    }
    if (absl::StartsWith(piece, "dns:")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, ": '", piece, "': DNS names are written ", kDnsScheme, "NAME:PORT"));
    }
    if (piece.find(':') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": '", piece, "' is not HOST:PORT"));
    }
    targets.static_addresses.insert(std::string(piece));
  }
  return targets;
}

absl::StatusOr<std::vector<std::string>> ResolveWithGetaddrinfo(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const int error = getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (error != 0) {
    const std::string message = absl::StrCat("cannot resolve '", host, "': ", gai_strerror(error));
    if (error == EAI_NONAME
#ifdef EAI_NODATA
        || error == EAI_NODATA
#endif
    ) {
      return absl::NotFoundError(message);
    }
    return absl::UnavailableError(message);
  }
  std::vector<std::string> addresses;
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) != nullptr) {
        addresses.push_back(absl::StrCat(text, ":", port));
      }
    } else if (a->ai_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
      if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)) != nullptr) {
        addresses.push_back(absl::StrCat("[", text, "]:", port));
      }
    }
  }
  freeaddrinfo(list);
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  if (addresses.empty()) {
    return absl::NotFoundError(absl::StrCat("'", host, "' has no IPv4 or IPv6 address"));
  }
  return addresses;
}

WorkerDiscovery::WorkerDiscovery(WorkerTargets targets, Options options, Update update)
    : targets_(std::move(targets)), options_(std::move(options)), update_(std::move(update)) {
  thread_ = std::thread([this] { Loop(); });
}

WorkerDiscovery::~WorkerDiscovery() { Stop(); }

void WorkerDiscovery::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::set<std::string> WorkerDiscovery::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

int WorkerDiscovery::rounds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return rounds_;
}

bool WorkerDiscovery::WaitForRounds(int rounds, double timeout_s) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, std::chrono::duration<double>(timeout_s),
                           [&] { return rounds_ >= rounds; });
}

std::set<std::string> WorkerDiscovery::ResolveAll() {
  std::set<std::string> all = targets_.static_addresses;
  for (const DnsWorkerName& name : targets_.dns_names) {
    absl::StatusOr<std::vector<std::string>> answer =
        options_.resolve ? options_.resolve(name.host, name.port)
                         : ResolveWithGetaddrinfo(name.host, name.port);
    if (answer.ok() && answer->empty()) {
      answer = absl::NotFoundError(absl::StrCat("'", name.host, "' resolved to no address"));
    }
    bool& failing = failing_[name];
    if (answer.ok()) {
      if (failing) LOG(INFO) << "worker discovery: " << name.ToString() << " resolves again";
      failing = false;
      last_answer_[name] = *std::move(answer);
    } else if (!failing) {
      // Logged once per failure streak; the last answer stays in use.
      failing = true;
      LOG(WARNING) << "worker discovery: " << answer.status().message() << " (keeping the "
                   << last_answer_[name].size() << " address(es) it last resolved to)";
    }
    const std::vector<std::string>& addresses = last_answer_[name];
    all.insert(addresses.begin(), addresses.end());
  }
  return all;
}

void WorkerDiscovery::Loop() {
  bool first = true;
  while (true) {
    std::set<std::string> resolved = ResolveAll();
    bool changed = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
      changed = first || resolved != current_;
      if (changed) current_ = resolved;
    }
    if (changed) {
      LOG(INFO) << "worker discovery: " << resolved.size()
                << " worker(s): " << absl::StrJoin(resolved, ",");
      update_(resolved);
    }
    first = false;
    std::unique_lock<std::mutex> lock(mutex_);
    ++rounds_;
    changed_.notify_all();
    if (changed_.wait_for(lock, std::chrono::duration<double>(options_.interval_s),
                          [&] { return stop_; })) {
      return;
    }
  }
}

}  // namespace blockserve::services
