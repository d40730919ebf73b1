#include "services/gateway/generate_call.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/strings/str_cat.h"
#include "services/common/proto_convert.h"
#include "services/common/server_stream.h"
#include "services/common/status_mapping.h"
#include "services/gateway/output_assembler.h"
#include "shared/common/logging.h"

namespace blockserve::services {
namespace {

using Clock = std::chrono::steady_clock;
using Stream = ServerStream<v1::GenerateResponse>;

double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

class GenerateCall : public std::enable_shared_from_this<GenerateCall> {
 public:
  GenerateCall(GatewayContext& gateway, const v1::GenerateRequest& request,
               std::chrono::system_clock::time_point client_deadline)
      : gateway_(gateway),
        request_(request),
        id_(gateway.next_id.fetch_add(1)),
        arrival_(Clock::now()) {
    gateway_.live_calls.fetch_add(1);
    const auto cap =
        std::chrono::system_clock::now() +
        std::chrono::microseconds(static_cast<int64_t>(gateway_.max_request_seconds * 1e6));
    deadline_ = std::min(client_deadline, cap);
  }
  ~GenerateCall() { gateway_.live_calls.fetch_sub(1); }

  grpc::ServerWriteReactor<v1::GenerateResponse>* Start();

 private:
  class Upstream;

  void Admitted();  // a queued request got its slot (any thread)
  void Begin();     // on the work pool
  void OnUpstreamMessage(const v1::ContextGenerateResponse& response);
  void OnUpstreamDone(const grpc::Status& status);
  void OnClientCancel();
  // Ends the request once: the last message (OK) or the error status.
  void CompleteLocked(std::unique_lock<std::mutex>& lock, absl::Status status, FinishReason reason);
  void Reject(const absl::Status& status);

  GatewayContext& gateway_;
  const v1::GenerateRequest request_;
  const uint64_t id_;
  const Clock::time_point arrival_;
  std::chrono::system_clock::time_point deadline_;
  std::shared_ptr<Stream> stream_;

  std::mutex mutex_;
  bool admitted_ = false;  // holds an admission slot
  bool completed_ = false;
  int replica_ = -1;              // holds a router slot when >= 0
  Upstream* upstream_ = nullptr;  // alive while non-null
  std::optional<OutputAssembler> output_;
  uint64_t seed_ = 0;
  int prompt_tokens_ = 0;
  double queue_seconds_ = 0;
  std::optional<Clock::time_point> first_token_;
  Clock::time_point last_token_;
  std::string stop_sequence_;
};

// The upstream ContextService.Generate call. Deletes itself in OnDone.
class GenerateCall::Upstream final : public grpc::ClientReadReactor<v1::ContextGenerateResponse> {
 public:
  Upstream(std::shared_ptr<GenerateCall> call, std::chrono::system_clock::time_point deadline)
      : call_(std::move(call)) {
    context_.set_deadline(deadline);
  }
  void Start(v1::ContextService::Stub& stub, const v1::ContextGenerateRequest& request) {
    request_ = request;
    stub.async()->Generate(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows with the status
    call_->OnUpstreamMessage(response_);
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    call_->OnUpstreamDone(status);
    delete this;
  }

 private:
  std::shared_ptr<GenerateCall> call_;
  grpc::ClientContext context_;
  v1::ContextGenerateRequest request_;
  v1::ContextGenerateResponse response_;
};

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerateCall::Start() {
  std::weak_ptr<GenerateCall> weak = weak_from_this();
  ServingState* state = gateway_.state;
  const bool entered = state->TryEnter();
  stream_ = Stream::Create({.on_cancel =
                                [weak] {
                                  if (auto call = weak.lock()) call->OnClientCancel();
                                },
                            // The stream holds the call until the client side is done.
                            .on_done =
                                [call = shared_from_this(), state, entered] {
                                  if (entered) state->Exit();
                                }});
  if (!entered) {
    Reject(ServingState::DrainingError());
    return stream_->reactor();
  }
  const std::optional<v1::ModelInfo> model = gateway_.router->model();
  if (!model.has_value()) {
    Reject(absl::UnavailableError("the gateway has not reached a context service yet"));
    return stream_->reactor();
  }
  if (absl::Status valid =
          CheckGenerateRequest(request_, *model, gateway_.tokenizer != nullptr, gateway_.limits);
      !valid.ok()) {
    Reject(valid);
    return stream_->reactor();
  }
  const AdmissionController::Decision decision = gateway_.admission->Enter(id_, [weak] {
    if (auto call = weak.lock()) call->Admitted();
  });
  gateway_.PublishAdmission();
  switch (decision) {
    case AdmissionController::Decision::kRejected:
      Reject(gateway_.admission->Rejection());
      break;
    case AdmissionController::Decision::kAdmitted: {
      std::lock_guard<std::mutex> lock(mutex_);
      admitted_ = true;
      gateway_.pool->Post([call = shared_from_this()] { call->Begin(); });
      break;
    }
    case AdmissionController::Decision::kQueued:
      break;
  }
  return stream_->reactor();
}

void GenerateCall::Reject(const absl::Status& status) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    completed_ = true;
  }
  gateway_.metrics->CountRequest("Generate", RequestOutcome(FinishReason::kError, status, true),
                                 StatusCodeName(status.code()));
  stream_->Finish(ToGrpcStatus(status));
}

void GenerateCall::Admitted() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!completed_) {
      admitted_ = true;
      gateway_.pool->Post([call = shared_from_this()] { call->Begin(); });
      return;
    }
  }
  gateway_.admission->Release();  // the client left while we were queued
  gateway_.PublishAdmission();
}

void GenerateCall::Begin() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (completed_) return;
  }
  const Clock::time_point begin = Clock::now();
  const uint64_t seed =
      request_.sampling().has_seed() ? request_.sampling().seed() : gateway_.NewSeed();
  const v1::ModelInfo model = *gateway_.router->model();
  // Tokenization: the expensive part, outside the lock.
  absl::StatusOr<GenerationRequest> prepared =
      PrepareGenerateRequest(request_, model, gateway_.tokenizer, gateway_.limits, seed);

  std::unique_lock<std::mutex> lock(mutex_);
  if (completed_) return;
  queue_seconds_ = SecondsBetween(arrival_, begin);
  gateway_.metrics->queue_seconds.Observe(queue_seconds_);
  if (!prepared.ok()) {
    CompleteLocked(lock, prepared.status(), FinishReason::kError);
    return;
  }
  absl::StatusOr<int> replica = gateway_.router->Acquire();
  if (!replica.ok()) {
    CompleteLocked(lock, replica.status(), FinishReason::kError);
    return;
  }
  replica_ = *replica;
  seed_ = seed;
  prompt_tokens_ = static_cast<int>(prepared->prompt.size());
  gateway_.metrics->prompt_tokens.Increment(prompt_tokens_);
  output_.emplace(
      gateway_.tokenizer,
      std::vector<std::string>(request_.stop_sequences().begin(), request_.stop_sequences().end()),
      request_.keep_special_tokens());

  v1::GenerateResponse first;
  first.mutable_start()->set_seed(seed_);
  first.mutable_start()->set_prompt_tokens(prompt_tokens_);
  first.mutable_start()->set_request_id(request_.request_id());
  stream_->Write(std::move(first));

  v1::ContextGenerateRequest upstream_request;
  ToProto(*prepared, &upstream_request);
  upstream_request.set_request_id(request_.request_id().empty() ? absl::StrCat("gw-", id_)
                                                                : request_.request_id());
  upstream_ = new Upstream(shared_from_this(), deadline_);
  upstream_->Start(gateway_.router->stub(replica_), upstream_request);
}

void GenerateCall::OnUpstreamMessage(const v1::ContextGenerateResponse& response) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (completed_) return;
  gateway_.router->ReportLoad(replica_, response.load());
  OutputAssembler::Delta delta =
      output_->Append(absl::MakeConstSpan(response.tokens().data(), response.tokens().size()),
                      absl::MakeConstSpan(response.logprobs().data(), response.logprobs().size()));
  const Clock::time_point now = Clock::now();
  if (!delta.tokens.empty()) {
    if (!first_token_) first_token_ = now;
    last_token_ = now;
  }
  if (!delta.tokens.empty() || !delta.text.empty()) {
    v1::GenerateResponse message;
    message.mutable_token_ids()->Assign(delta.tokens.begin(), delta.tokens.end());
    message.mutable_logprobs()->Assign(delta.logprobs.begin(), delta.logprobs.end());
    message.set_text(std::move(delta.text));
    stream_->Write(std::move(message));
  }
  if (delta.stopped) {
    stop_sequence_ = delta.stop_sequence;
    CompleteLocked(lock, absl::OkStatus(), FinishReason::kStop);
  } else if (response.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
    CompleteLocked(lock, absl::OkStatus(), FromProto(response.finish_reason()));
  }
}

void GenerateCall::OnUpstreamDone(const grpc::Status& status) {
  std::unique_lock<std::mutex> lock(mutex_);
  upstream_ = nullptr;
  if (completed_) return;
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && replica_ >= 0) {
    gateway_.router->ReportUnavailable(replica_);
  }
  absl::Status error = FromGrpcStatus(status);
  if (error.ok()) {
    error = absl::InternalError(absl::StrCat("context service ", gateway_.router->address(replica_),
                                             " ended the stream without a finish reason"));
  }
  CompleteLocked(lock, error, FinishReason::kError);
}

void GenerateCall::OnClientCancel() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (completed_) return;
  if (!admitted_ && gateway_.admission->Withdraw(id_)) gateway_.PublishAdmission();
  CompleteLocked(lock, absl::CancelledError("the client cancelled the request"),
                 FinishReason::kCancelled);
}

void GenerateCall::CompleteLocked(std::unique_lock<std::mutex>& lock, absl::Status status,
                                  FinishReason reason) {
  if (completed_) return;
  completed_ = true;
  const Clock::time_point now = Clock::now();
  const int generated = output_ ? output_->generated_tokens() : 0;
  if (status.ok()) {
    v1::GenerateResponse last;
    last.set_text(output_->Finish());
    v1::GenerationEnd* end = last.mutable_end();
    end->set_finish_reason(ToProto(reason));
    end->set_seed(seed_);
    end->set_stop_sequence(stop_sequence_);
    v1::Usage* usage = end->mutable_usage();
    usage->set_prompt_tokens(prompt_tokens_);
    usage->set_generated_tokens(generated);
    usage->set_time_to_first_token_seconds(first_token_ ? SecondsBetween(arrival_, *first_token_)
                                                        : 0.0);
    usage->set_total_seconds(SecondsBetween(arrival_, now));
    usage->set_queue_seconds(queue_seconds_);
    stream_->Write(std::move(last));
    stream_->Finish(grpc::Status::OK);
  } else {
    stream_->Finish(ToGrpcStatus(status));
  }
  if (upstream_ != nullptr) upstream_->Cancel();  // stop or client gone: free the session
  GatewayMetrics& metrics = *gateway_.metrics;
  metrics.CountRequest("Generate", RequestOutcome(reason, status, false),
                       StatusCodeName(status.code()));
  metrics.request_seconds.Observe(SecondsBetween(arrival_, now));
  metrics.generated_tokens.Increment(generated);
  if (first_token_) {
    metrics.time_to_first_token_seconds.Observe(SecondsBetween(arrival_, *first_token_));
    if (generated > 1) {
      metrics.inter_token_seconds.Observe(SecondsBetween(*first_token_, last_token_) /
                                          (generated - 1));
    }
  }
  const bool release_slot = admitted_;
  const int replica = replica_;
  replica_ = -1;
  lock.unlock();
  if (replica >= 0) gateway_.router->Release(replica);
  if (release_slot) {
    gateway_.admission->Release();
    gateway_.PublishAdmission();
  }
  lock.lock();
}

}  // namespace

grpc::ServerWriteReactor<v1::GenerateResponse>* StartGenerateCall(
    GatewayContext& gateway, grpc::CallbackServerContext* context,
    const v1::GenerateRequest* request) {
  auto call = std::make_shared<GenerateCall>(gateway, *request, context->deadline());
  return call->Start();
}

}  // namespace blockserve::services
