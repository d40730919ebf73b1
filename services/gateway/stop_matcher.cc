#include "services/gateway/stop_matcher.h"

#include <algorithm>

namespace blockserve::services {

StopMatcher::StopMatcher(std::vector<std::string> stop_sequences)
    : stops_(std::move(stop_sequences)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

StopMatcher::Result StopMatcher::Push(absl::string_view piece) {
  Result result;
  if (done_) return result;
  held_.append(piece.data(), piece.size());
  if (stops_.empty()) {
    result.text.swap(held_);
    return result;
  }
  // The earliest occurrence of any stop sequence (the longest one on a tie).
  size_t best = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t at = held_.find(stops_[i]);
    if (at == std::string::npos) continue;
    if (best == std::string::npos || at < best ||
        (at == best && stops_[i].size() > stops_[result.which].size())) {
      best = at;
      result.which = static_cast<int>(i);
    }
  }
  if (best != std::string::npos) {
    result.matched = true;
    result.text = held_.substr(0, best);
    held_.clear();
    done_ = true;
    return result;
  }
  // Hold back the longest tail that is a proper prefix of a stop sequence.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    const size_t longest = std::min(stop.size() - 1, held_.size());
    for (size_t k = longest; k > hold; --k) {
      if (absl::string_view(held_).substr(held_.size() - k) ==
          absl::string_view(stop).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  result.text = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return result;
}

std::string StopMatcher::Flush() {
  std::string rest;
  if (!done_) rest.swap(held_);
  return rest;
}

}  // namespace blockserve::services
