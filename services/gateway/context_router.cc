#include "services/gateway/context_router.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "services/gateway/gateway_metrics.h"
#include "shared/common/logging.h"

namespace blockserve::services {
namespace {

std::unique_ptr<v1::ContextService::Stub> MakeStub(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return v1::ContextService::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

bool SameModel(const v1::ModelInfo& a, const v1::ModelInfo& b) {
  return a.vocab_size() == b.vocab_size() && a.block_length() == b.block_length() &&
         a.context_size() == b.context_size() && a.eos_token_id() == b.eos_token_id() &&
         a.max_sequence_length() == b.max_sequence_length();
}

}  // namespace

ContextRouter::ContextRouter(const std::vector<std::string>& addresses, const Options& options,
                             GatewayMetrics* metrics)
    : options_(options), metrics_(metrics) {
  for (const std::string& address : addresses) {
    auto replica = std::make_unique<Replica>();
    replica->address = address;
    replica->stub = MakeStub(address);
    if (metrics_ != nullptr) {
      replica->up_gauge = &metrics_->replica_up.Add({{"replica", address}});
      replica->outstanding_gauge = &metrics_->replica_outstanding.Add({{"replica", address}});
    }
    replicas_.push_back(std::move(replica));
  }
  poller_ = std::thread([this] { PollLoop(); });
}

ContextRouter::~ContextRouter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (poller_.joinable()) poller_.join();
}

absl::StatusOr<int> ContextRouter::Acquire() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ReplicaSlot> slots;
  for (const auto& replica : replicas_) {
    slots.push_back(
        {.available = replica->answering && replica->compatible && !replica->load.draining(),
         .local_outstanding = replica->outstanding,
         .reported_sessions = replica->load.active_sessions() + replica->load.waiting_sessions(),
         .has_workers = replica->load.ready_workers() > 0});
  }
  const int pick = policy_.Pick(slots);
  if (pick < 0) {
    return absl::UnavailableError(absl::StrCat("no context service replica is available (",
                                               replicas_.size(), " configured)"));
  }
  ++replicas_[pick]->outstanding;
  PublishLocked();
  return pick;
}

void ContextRouter::Release(int replica) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (replicas_[replica]->outstanding > 0) --replicas_[replica]->outstanding;
  PublishLocked();
}

void ContextRouter::ReportLoad(int replica, const v1::ContextLoad& load) {
  std::lock_guard<std::mutex> lock(mutex_);
  replicas_[replica]->load = load;
}

void ContextRouter::ReportUnavailable(int replica) {
  std::lock_guard<std::mutex> lock(mutex_);
  replicas_[replica]->answering = false;
  PublishLocked();
}

std::optional<v1::ModelInfo> ContextRouter::model() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return model_;
}

bool ContextRouter::WaitForModel(double timeout_s) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] {
    return model_.has_value() || stopping_;
  }) && model_.has_value();
}

void ContextRouter::PublishLocked() {
  for (const auto& replica : replicas_) {
    if (replica->up_gauge != nullptr) {
      replica->up_gauge->Set(replica->answering && replica->compatible ? 1 : 0);
    }
    if (replica->outstanding_gauge != nullptr) {
      replica->outstanding_gauge->Set(replica->outstanding);
    }
  }
}

void ContextRouter::PollLoop() {
  while (true) {
    for (size_t i = 0; i < replicas_.size(); ++i) {
      Replica& replica = *replicas_[i];
      const auto deadline =
          std::chrono::system_clock::now() +
          std::chrono::microseconds(static_cast<int64_t>(options_.poll_timeout_s * 1e6));
      // Synchronous calls on this dedicated thread (never in a reaction).
      bool need_info;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        need_info = !model_.has_value() || !replica.answering;
      }
      std::optional<v1::ModelInfo> info;
      if (need_info) {
        grpc::ClientContext context;
        context.set_deadline(deadline);
        v1::GetInfoResponse response;
        if (replica.stub->GetInfo(&context, v1::GetInfoRequest(), &response).ok()) {
          info = response.model();
        }
      }
      grpc::ClientContext context;
      context.set_deadline(deadline);
      v1::ContextLoad load;
      // A replica becomes available only once it has told its model.
      const bool answered = replica.stub->GetLoad(&context, v1::GetLoadRequest(), &load).ok() &&
                            (!need_info || info.has_value());
      std::lock_guard<std::mutex> lock(mutex_);
      if (info.has_value()) {
        if (!model_.has_value()) {
          model_ = *info;
          LOG(INFO) << "gateway: model " << info->name() << " (vocab " << info->vocab_size()
                    << ", block length " << info->block_length() << ") from " << replica.address;
          changed_.notify_all();
        }
        const bool compatible = SameModel(*model_, *info);
        if (!compatible && replica.compatible) {
          LOG(ERROR) << "gateway: context replica " << replica.address
                     << " serves a different model than the others: not routing to it";
        }
        replica.compatible = compatible;
      }
      if (answered != replica.answering) {
        LOG(INFO) << "gateway: context replica " << replica.address
                  << (answered ? " is available" : " is unavailable");
      }
      replica.answering = answered;
      if (answered) replica.load = load;
      PublishLocked();
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (changed_.wait_for(lock, std::chrono::duration<double>(options_.poll_interval_s),
                          [&] { return stopping_; })) {
      return;
    }
  }
}

}  // namespace blockserve::services
