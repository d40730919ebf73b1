// The service target of `blockserve bench`: a load generator for a running
// stack's gateway, through the public Generation.Generate streaming call
// (proto/blockserve/v1/generation.proto) and nothing else.
//
// `concurrency` streams each run one call at a time: random prompt ids
// (1..V-1, V from GetModelInfo), exactly gen_len tokens (ignore_eos),
// greedy, until `requests` calls have been started or `duration_s` has
// passed, whichever comes first (each stream makes at least one call).
// Every call carries a deadline (`timeout_s`), so a run always ends. Calls
// are read with gRPC's callback API (no thread per stream), so the load
// generator's own CPU stays small next to a stack on the same cores. The
// report has the same fields as the engine target's (bench_report.h),
// measured at the client: the time to first token counts from the call's
// start, the gaps between streamed messages give the inter-token latency.
// Thread-compatible: one run at a time per object; the stubs are shared by
// the calls (gRPC stubs are thread-safe).
#ifndef BLOCKSERVE_TOOLS_BENCH_GATEWAY_BENCH_H_
#define BLOCKSERVE_TOOLS_BENCH_GATEWAY_BENCH_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "blockserve/v1/generation.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "shared/model/model_config.h"

namespace blockserve::bench {

struct GatewayBenchOptions {
  int prompt_len = 128;
  int gen_len = 128;
  int concurrency = 1;     // streams open at once
  int requests = 0;        // calls in all (0: one per stream)
  double duration_s = 0;   // no further call starts after this many seconds (0: no bound)
  double timeout_s = 600;  // deadline of every call
  uint64_t seed = 0;       // of the random prompts
  bool progress = false;   // a line on stderr every 10 s
};

// Connections to one gateway: `channels` separate HTTP/2 connections, the
// streams spread over them (one connection serializes its frames).
class GatewayClient {
 public:
  static std::unique_ptr<GatewayClient> Connect(const std::string& address, int channels);

  // GetModelInfo with a deadline.
  absl::StatusOr<v1::GetModelInfoResponse> ModelInfo(double timeout_s) const;
  v1::Generation::Stub& stub(int stream) const { return *stubs_[stream % stubs_.size()]; }
  const std::string& address() const { return address_; }

 private:
  std::string address_;
  std::vector<std::unique_ptr<v1::Generation::Stub>> stubs_;
};

// Runs one measurement point and returns its JSON object (the engine
// target's fields; see docs/benchmarks.md). `config`, when known (the
// --model directory), gives kv_bytes_per_seq and non_embedding_params.
// Fails when the gateway cannot be reached; failed calls are counted in
// `failed_requests` (the first error in `first_error`).
absl::StatusOr<nlohmann::json> RunGatewayBench(const GatewayClient& client,
                                               const GatewayBenchOptions& options,
                                               const std::optional<ModelConfig>& config);

}  // namespace blockserve::bench

#endif  // BLOCKSERVE_TOOLS_BENCH_GATEWAY_BENCH_H_
