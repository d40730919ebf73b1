// StopMatcher: finds stop sequences in streamed text.
//
// Text arrives in pieces (whole UTF-8 characters); a stop sequence may span
// pieces, tokens and blocks. Push() returns the text that is now safe to
// emit: everything except a tail that could still be the start of a stop
// sequence, which is held back until it is certain. When a stop sequence
// matches, the text up to (not including) its earliest occurrence is
// returned and the matcher is done. Flush() returns what is held back (the
// generation ended for another reason).
//
// Held-back text always starts at a character boundary (a stop sequence is
// valid UTF-8, so its prefixes start with a lead byte). Not thread-safe; one
// per request.
#ifndef BLOCKSERVE_SERVICES_GATEWAY_STOP_MATCHER_H_
#define BLOCKSERVE_SERVICES_GATEWAY_STOP_MATCHER_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace blockserve::services {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stop_sequences);

  struct Result {
    std::string text;  // safe to emit now
    bool matched = false;
    int which = -1;  // index of the stop sequence that matched
  };
  Result Push(absl::string_view piece);
  std::string Flush();

  bool done() const { return done_; }
  // The stop sequence Result::which refers to.
  const std::string& sequence(int which) const { return stops_[which]; }
  size_t held_bytes() const { return held_.size(); }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool done_ = false;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_GATEWAY_STOP_MATCHER_H_
