// Synchronous probes of the standard gRPC health service, for processes
// that start servers and must know when they are ready (`blockserve up`,
// integration tests). Blocking: never call from a gRPC reaction.
// Thread-safe.
#ifndef BLOCKSERVE_SERVICES_COMMON_HEALTH_PROBE_H_
#define BLOCKSERVE_SERVICES_COMMON_HEALTH_PROBE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace blockserve::services {

enum class HealthState { kUnreachable, kNotServing, kServing };

// One Check("") call with a deadline of `timeout_s`.
HealthState ProbeHealth(const std::string& address, double timeout_s);

// Polls until the server reports SERVING. DEADLINE_EXCEEDED after
// `timeout_s`; `keep_waiting` (may be empty) is asked between polls and
// ends the wait with ABORTED when it returns false (e.g. the process died).
absl::Status WaitUntilServing(const std::string& address, double timeout_s,
                              const std::function<bool()>& keep_waiting = {});

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_COMMON_HEALTH_PROBE_H_
