// Test helpers: the golden model fixtures under tests/data/models (written by
// the independent PyTorch reference, tools/reference/) and a synchronous way
// to run requests through an Engine.
#ifndef BLOCKSERVE_TESTS_SHARED_ENGINE_FIXTURE_UTIL_H_
#define BLOCKSERVE_TESTS_SHARED_ENGINE_FIXTURE_UTIL_H_

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "shared/engine/engine.h"

namespace blockserve::testing {

inline std::string FixtureDir(const std::string& name) {
  return std::string(BLOCKSERVE_TEST_DATA_DIR) + "/models/" + name;
}

inline const std::vector<std::string>& FixtureNames() {
  static const std::vector<std::string> names = {
      "block_l4_r2",          "block_l2_r1_inter",         "block_l8_r4",
      "block_l2_r2_odd_f16",  "block_l8_r1_odd_bf16",      "block_config_rotary",
      "block_config_sequential", "vanilla_parallel_rot025", "vanilla_sequential_rot1_bf16",
      "vanilla_v512_base500"};
  return names;
}

inline nlohmann::json LoadExpected(const std::string& name) {
  std::ifstream in(FixtureDir(name) + "/expected.json");
  return nlohmann::json::parse(in);
}

struct Generated {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  FinishReason reason = FinishReason::kNone;
  absl::Status status;
  int updates = 0;
};

// Enqueues every request at once (they batch together) and waits for all.
inline std::vector<Generated> GenerateAll(Engine& engine,
                                          const std::vector<GenerationRequest>& requests) {
  std::mutex mutex;
  std::condition_variable done;
  std::vector<Generated> out(requests.size());
  size_t remaining = requests.size();
  for (size_t i = 0; i < requests.size(); ++i) {
    auto id = engine.Enqueue(requests[i], [&, i](GenerationUpdate update) {
      std::lock_guard<std::mutex> lock(mutex);
      Generated& g = out[i];
      ++g.updates;
      g.tokens.insert(g.tokens.end(), update.tokens.begin(), update.tokens.end());
      g.logprobs.insert(g.logprobs.end(), update.logprobs.begin(), update.logprobs.end());
      if (update.finished) {
        g.reason = update.finish_reason;
        g.status = update.status;
        if (--remaining == 0) done.notify_all();
      }
    });
    if (!id.ok()) {
      std::lock_guard<std::mutex> lock(mutex);
      out[i].status = id.status();
      --remaining;
    }
  }
  std::unique_lock<std::mutex> lock(mutex);
  done.wait(lock, [&] { return remaining == 0; });
  return out;
}

}  // namespace blockserve::testing

#endif  // BLOCKSERVE_TESTS_SHARED_ENGINE_FIXTURE_UTIL_H_
