#include "tools/bench/gateway_bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <vector>

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

// The state of one measurement, shared by its calls' reactions.
struct RunState {
  RunState(const GatewayClient& client, const GatewayBenchOptions& options,
           const std::vector<v1::GenerateRequest>& calls)
      : client(client),
        options(options),
        calls(calls),
        traces(calls.size()),
        server_ttft(calls.size(), -1),
        started(calls.size(), 0),
        start(Clock::now()) {}

  const GatewayClient& client;
  const GatewayBenchOptions& options;
  const std::vector<v1::GenerateRequest>& calls;
  std::vector<RequestTrace> traces;  // one per call; each written by its own call only
  std::vector<double> server_ttft;
  std::vector<char> started;
  const Clock::time_point start;
  std::atomic<int> next{0};  // next call to start
  std::atomic<int64_t> generated{0};
  std::mutex mutex;  // guards the fields below
  std::condition_variable all_done;
  int streams_left = 0;
  int failed = 0;
  std::string first_error;

  double SinceStart() const { return std::chrono::duration<double>(Clock::now() - start).count(); }
  // Starts stream `slot`'s next call, or ends the stream when the run's
  // calls are all started or (after its first) the duration has passed.
  void StartNext(int slot, bool first);
  void StreamEnded() {
    std::lock_guard<std::mutex> lock(mutex);
    if (--streams_left == 0) all_done.notify_all();
  }
};

// One Generate call, read with the callback API: the load generator needs
// no thread per stream, so its own CPU stays small next to the stack it
// measures on the same cores. Deletes itself when the call is done.
class StreamCall : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  StreamCall(RunState& run, int slot, int index) : run_(run), slot_(slot), index_(index) {
    context_.set_deadline(DeadlineAfter(run.options.timeout_s));
  }

  void Start() {
    RequestTrace& trace = run_.traces[index_];
    trace.prompt_tokens = run_.options.prompt_len;
    trace.enqueued_s = run_.SinceStart();
    run_.client.stub(slot_).async()->Generate(&context_, &run_.calls[index_], this);
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    if (response_.token_ids_size() > 0) {
      run_.traces[index_].updates.push_back({run_.SinceStart(), response_.token_ids_size()});
      run_.generated.fetch_add(response_.token_ids_size(), std::memory_order_relaxed);
    }
    if (response_.has_end()) {
      run_.server_ttft[index_] = response_.end().usage().time_to_first_token_seconds();
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    if (!status.ok()) {
      run_.traces[index_].ok = false;
      std::lock_guard<std::mutex> lock(run_.mutex);
      if (run_.failed++ == 0) {
        run_.first_error = absl::StrCat("request ", index_, ": ", status.error_message(),
                                        " (gRPC code ", static_cast<int>(status.error_code()), ")");
      }
    }
    RunState& run = run_;
    const int slot = slot_;
    delete this;
    run.StartNext(slot, /*first=*/false);
  }

 private:
  RunState& run_;
  const int slot_;
  const int index_;
  grpc::ClientContext context_;
  v1::GenerateResponse response_;
};

void RunState::StartNext(int slot, bool first) {
  const int index = next.fetch_add(1);
  const bool in_time = first || options.duration_s <= 0 || SinceStart() < options.duration_s;
  if (index >= static_cast<int>(calls.size()) || !in_time) {
    StreamEnded();
    return;
  }
  started[index] = 1;
  (new StreamCall(*this, slot, index))->Start();
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

  RunState run(client, options, calls);
  const int streams = std::min(options.concurrency, requests);
  run.streams_left = streams;
  // Every stream makes its first call; each further call starts from the
  // reaction that ends the previous one (StreamCall::OnDone).
  for (int s = 0; s < streams; ++s) run.StartNext(s, /*first=*/true);
  // Progress on stderr every few seconds while the streams run.
  double next_report_s = kProgressEveryS;
  {
    std::unique_lock<std::mutex> lock(run.mutex);
    while (run.streams_left > 0) {
      run.all_done.wait_for(lock, std::chrono::milliseconds(50));
      if (options.progress && run.SinceStart() >= next_report_s) {
        std::fprintf(stderr, "bench:   %.0f s: %lld of %lld tokens generated\n", run.SinceStart(),
                     static_cast<long long>(run.generated.load()),
                     static_cast<long long>(int64_t{requests} * options.gen_len));
        next_report_s += kProgressEveryS;
      }
    }
  }
  const double elapsed = run.SinceStart();
  std::vector<RequestTrace>& traces = run.traces;
  std::vector<double>& server_ttft = run.server_ttft;
  std::vector<char>& started = run.started;
  const std::string& first_error = run.first_error;

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
