#include "services/gateway/admission_controller.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace blockserve::services {

AdmissionController::Decision AdmissionController::Enter(uint64_t id,
                                                         std::function<void()> on_admitted) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (running_ < options_.max_running && queue_.empty()) {
    ++running_;
    return Decision::kAdmitted;
  }
  if (static_cast<int>(queue_.size()) < options_.max_queued) {
    queue_.push_back({id, std::move(on_admitted)});
    return Decision::kQueued;
  }
  return Decision::kRejected;
}

void AdmissionController::Release() {
  std::function<void()> next;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.empty()) {
      running_ = std::max(0, running_ - 1);
      return;
    }
    // The slot passes straight to the next request: running_ is unchanged.
    next = std::move(queue_.front().on_admitted);
    queue_.pop_front();
  }
  if (next) next();
}

bool AdmissionController::Withdraw(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Waiter& w) { return w.id == id; });
  if (it == queue_.end()) return false;
  queue_.erase(it);
  return true;
}

int AdmissionController::running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return running_;
}

int AdmissionController::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(queue_.size());
}

absl::Status AdmissionController::Rejection() const {
  return absl::ResourceExhaustedError(absl::StrCat("the gateway is at capacity (",
                                                   options_.max_running, " requests running, ",
                                                   options_.max_queued, " queued): retry later"));
}

}  // namespace blockserve::services
