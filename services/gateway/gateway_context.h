// GatewayContext: what every gateway call shares: the admission controller,
// the context-replica router, the tokenizer, the work pool for tokenization,
// limits and metrics. Owned by RunGateway (or a test); outlives every call
// (live_calls counts the calls still holding it).
//
// Thread-safe: the members are; NewSeed() and NextId() are atomic.
#ifndef BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_CONTEXT_H_
#define BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_CONTEXT_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>

#include "services/common/serving_state.h"
#include "services/common/thread_pool.h"
#include "services/gateway/admission_controller.h"
#include "services/gateway/context_router.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/request_validation.h"
#include "shared/tokenizer/tokenizer.h"

namespace blockserve::services {

struct GatewayContext {
  ServingState* state = nullptr;
  AdmissionController* admission = nullptr;
  ContextRouter* router = nullptr;
  ThreadPool* pool = nullptr;
  GatewayMetrics* metrics = nullptr;
  const Tokenizer* tokenizer = nullptr;  // null: token ids only
  GatewayLimits limits;
  double max_request_seconds = 600.0;  // upstream deadline when the client set none

  std::atomic<int> live_calls{0};
  std::atomic<uint64_t> next_id{1};

  // Updates the admission gauges after Enter/Release/Withdraw.
  void PublishAdmission() {
    metrics->running_requests.Set(admission->running());
    metrics->queued_requests.Set(admission->queued());
  }

  uint64_t NewSeed() {
    std::lock_guard<std::mutex> lock(seed_mutex);
    return seed_generator();
  }

  std::mutex seed_mutex;
  std::mt19937_64 seed_generator{std::random_device{}()};
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_GATEWAY_GATEWAY_CONTEXT_H_
