// Blocking client calls to a context service's ContextAdmin service
// (proto/blockserve/v1/context_admin.proto), each with a deadline. For
// command-line tools (`blockserve up`, `blockserve context-admin`), never
// for a gRPC reaction. Errors come back as absl::Status (the gRPC status
// mapped by services/common/status_mapping.h). Thread-safe.
#ifndef BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ADMIN_CLIENT_H_
#define BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ADMIN_CLIENT_H_

#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "blockserve/v1/context_admin.pb.h"

namespace blockserve::services {

// ContextAdmin.SetWorkers: replaces the worker set of the context service
// at `context_address`; returns the set as the pool now sees it.
absl::StatusOr<v1::WorkersResponse> SetContextWorkers(const std::string& context_address,
                                                      const std::set<std::string>& workers,
                                                      double timeout_s);

// ContextAdmin.ListWorkers.
absl::StatusOr<v1::WorkersResponse> ListContextWorkers(const std::string& context_address,
                                                       double timeout_s);

// ContextAdmin.AnnounceDrain.
absl::Status AnnounceContextDrain(const std::string& context_address, double timeout_s);

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_CONTEXT_ADMIN_CLIENT_H_
