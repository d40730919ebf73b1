#include "tools/bench/gateway_bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/engine_bench.h"

namespace blockserve::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kProgressEveryS = 10;
constexpr double kModelInfoTimeoutS = 5;

std::chrono::system_clock::time_point DeadlineAfter(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
}

}  // namespace

std::unique_ptr<GatewayClient> GatewayClient::Connect(const std::string& address, int channels) {
  auto client = std::unique_ptr<GatewayClient>(new GatewayClient());
  client->address_ = address;
  for (int c = 0; c < std::max(1, channels); ++c) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    // A distinct argument per channel: gRPC would otherwise share one
    // connection (subchannel) between channels to the same address.
    args.SetInt("blockserve.bench_channel", c);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    client->stubs_.push_back(v1::Generation::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args)));
  }
  return client;
}

absl::StatusOr<v1::GetModelInfoResponse> GatewayClient::ModelInfo(double timeout_s) const {
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(timeout_s));
  context.set_wait_for_ready(true);  // a stack that is still starting
  v1::GetModelInfoResponse response;
  const grpc::Status status = stubs_[0]->GetModelInfo(&context, {}, &response);
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("GetModelInfo on ", address_, ": ",
                                               status.error_message(), " (gRPC code ",
                                               static_cast<int>(status.error_code()), ")"));
  }
  return response;
}

absl::StatusOr<nlohmann::json> RunGatewayBench(const GatewayClient& client,
                                               const GatewayBenchOptions& options,
                                               const std::optional<ModelConfig>& config) {
  if (options.prompt_len < 1 || options.gen_len < 1 || options.concurrency < 1 ||
      options.requests < 0 || options.timeout_s <= 0 || options.duration_s < 0) {
    return absl::InvalidArgumentError(
        "prompt length, generation length and concurrency must be >= 1, the timeout > 0");
  }
  // The model-info call is set-up, not measured: it gets at least a few
  // seconds even when the calls under test have a tight deadline.
  absl::StatusOr<v1::GetModelInfoResponse> info =
      client.ModelInfo(std::max(options.timeout_s, kModelInfoTimeoutS));
  if (!info.ok()) return info.status();
  const int vocab = info->model().vocab_size();
  if (vocab < 2) return absl::FailedPreconditionError("the gateway reports no vocabulary");
  const int requests = options.requests > 0 ? options.requests : options.concurrency;

  // Prompts drawn up front, so that drawing costs no time in the run.
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<int32_t> token(1, vocab - 1);
  std::vector<v1::GenerateRequest> calls(requests);
  for (int i = 0; i < requests; ++i) {
    v1::GenerateRequest& request = calls[i];
    auto* ids = request.mutable_token_ids()->mutable_ids();
    ids->Reserve(options.prompt_len);
    for (int t = 0; t < options.prompt_len; ++t) ids->Add(token(rng));
    request.set_max_new_tokens(options.gen_len);
    request.set_ignore_eos(true);
    request.mutable_sampling()->set_temperature(0);  // greedy
    request.mutable_sampling()->set_seed(options.seed + static_cast<uint64_t>(i));
    request.set_request_id(absl::StrCat("bench-", i));
  }

  std::vector<RequestTrace> traces(requests);
  std::vector<double> server_ttft(requests, -1);
  std::vector<char> started(requests, 0);
  std::atomic<int> next{0};
  std::atomic<int> failed{0};
  std::atomic<int64_t> generated{0};
  std::atomic<int> streams_done{0};
  std::mutex error_mutex;
  std::string first_error;
  const Clock::time_point start = Clock::now();
  auto since_start = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };

  std::vector<std::thread> threads;
  const int streams = std::min(options.concurrency, requests);
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      bool first = true;
      for (int i = next.fetch_add(1); i < requests; i = next.fetch_add(1), first = false) {
        // Every stream makes its first call; later ones only within the bound.
        if (!first && options.duration_s > 0 && since_start() >= options.duration_s) break;
        started[i] = 1;
        RequestTrace& trace = traces[i];
        trace.prompt_tokens = options.prompt_len;
        trace.enqueued_s = since_start();
        grpc::ClientContext context;
        context.set_deadline(DeadlineAfter(options.timeout_s));
        std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
            client.stub(s).Generate(&context, calls[i]);
        v1::GenerateResponse response;
        while (reader->Read(&response)) {
          if (response.token_ids_size() > 0) {
            trace.updates.push_back({since_start(), response.token_ids_size()});
            generated.fetch_add(response.token_ids_size(), std::memory_order_relaxed);
          }
          if (response.has_end()) {
            server_ttft[i] = response.end().usage().time_to_first_token_seconds();
          }
        }
        const grpc::Status status = reader->Finish();
        if (!status.ok()) {
          trace.ok = false;
          if (failed.fetch_add(1) == 0) {
            std::lock_guard<std::mutex> lock(error_mutex);
            first_error = absl::StrCat("request ", i, ": ", status.error_message(), " (gRPC code ",
                                       static_cast<int>(status.error_code()), ")");
          }
        }
      }
      streams_done.fetch_add(1);
    });
  }
  // Progress on stderr every few seconds while the streams run.
  double next_report_s = kProgressEveryS;
  while (streams_done.load() < streams) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (options.progress && since_start() >= next_report_s) {
      std::fprintf(stderr, "bench:   %.0f s: %lld of %lld tokens generated\n", since_start(),
                   static_cast<long long>(generated.load()),
                   static_cast<long long>(int64_t{requests} * options.gen_len));
      next_report_s += kProgressEveryS;
    }
  }
  for (std::thread& thread : threads) thread.join();
  const double elapsed = since_start();

  std::vector<RequestTrace> ran;
  std::vector<double> server_ttfts;
  for (int i = 0; i < requests; ++i) {
    if (!started[i]) continue;
    ran.push_back(std::move(traces[i]));
    if (server_ttft[i] >= 0) server_ttfts.push_back(server_ttft[i]);
  }
  const BenchSummary summary = Summarize(ran, elapsed);
  nlohmann::json out;
  out["target"] = "gateway";
  out["gateway"] = client.address();
  out["model"] = info->model().name();
  out["kind"] = info->model().kind();
  out["context_replicas"] = info->context_replicas();
  if (config.has_value()) out["non_embedding_params"] = config->NonEmbeddingParameters();
  out["prompt_len"] = options.prompt_len;
  out["gen_len"] = options.gen_len;
  out["batch"] = options.concurrency;
  out["concurrency"] = options.concurrency;
  summary.AddTo(out);
  out["failed_requests"] = summary.failed_requests;
  if (!first_error.empty()) out["first_error"] = first_error;
  out["server_ttft"] = ComputePercentiles(server_ttfts).ToJson();
  const int64_t total_tokens = int64_t{options.prompt_len} + options.gen_len;
  out["kv_bytes_per_seq"] =
      config.has_value() ? nlohmann::json(KvBytesPerSequence(*config, total_tokens)) : nullptr;
  // The servers' memory is not visible from here; this is the load
  // generator's own.
  out["peak_rss_bytes"] = nullptr;
  out["client_peak_rss_bytes"] = PeakRssBytes();
  return out;
}

}  // namespace blockserve::bench
