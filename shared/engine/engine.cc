#include "shared/engine/engine.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "shared/common/logging.h"
#include "shared/common/status_macros.h"

namespace blockserve {
namespace {

// Block Transformer: the global stage and the local stage in one thread.
class BlockCore : public Engine::Core {
 public:
  BlockCore(std::unique_ptr<ContextScheduler> context, std::unique_ptr<TokenDecodeBatcher> batcher)
      : context_(std::move(context)), batcher_(std::move(batcher)) {}

  absl::Status Add(uint64_t id, GenerationRequest request) override {
    return context_->AddSession(id, std::move(request));
  }
  bool Cancel(uint64_t id) override {
    batcher_->CancelSession(id);
    return context_->CancelSession(id);
  }
  bool HasWork() const override { return context_->HasStepWork() || !batcher_->idle(); }

  void Step(std::vector<GenerationUpdate>& updates) override {
    ContextScheduler::StepOutput step = context_->Step();
    for (GenerationUpdate& failure : step.failures) updates.push_back(std::move(failure));
    for (BlockJob& job : step.jobs) {
      const uint64_t session = job.session_id;
      const uint64_t block = job.block_index;
      absl::Status status = batcher_->Submit(std::move(job));
      if (!status.ok()) {
        BlockResult failed;
        failed.session_id = session;
        failed.block_index = block;
        failed.status = status;
        if (auto update = context_->CompleteBlock(std::move(failed))) {
          updates.push_back(*std::move(update));
        }
      }
    }
    // Decode the blocks to the end, so the next block-decoder pass sees them.
    while (!batcher_->idle()) {
      for (BlockResult& result : batcher_->Step()) {
        if (auto update = context_->CompleteBlock(std::move(result))) {
          updates.push_back(*std::move(update));
        }
      }
    }
  }

  EngineStats Stats() const override {
    const ContextScheduler::Stats s = context_->stats();
    EngineStats stats;
    stats.waiting_requests = s.waiting_sessions;
    stats.active_requests = s.active_sessions;
    stats.kv_used_bytes = s.kv_used_bytes;
    stats.kv_capacity_bytes = s.kv_capacity_bytes;
    return stats;
  }

 private:
  std::unique_ptr<ContextScheduler> context_;
  std::unique_ptr<TokenDecodeBatcher> batcher_;
};

class VanillaCore : public Engine::Core {
 public:
  explicit VanillaCore(std::unique_ptr<VanillaScheduler> scheduler)
      : scheduler_(std::move(scheduler)) {}
  absl::Status Add(uint64_t id, GenerationRequest request) override {
    return scheduler_->AddSession(id, std::move(request));
  }
  bool Cancel(uint64_t id) override { return scheduler_->CancelSession(id); }
  bool HasWork() const override { return scheduler_->HasStepWork(); }
  void Step(std::vector<GenerationUpdate>& updates) override {
    for (GenerationUpdate& update : scheduler_->Step()) updates.push_back(std::move(update));
  }
  EngineStats Stats() const override {
    const VanillaScheduler::Stats s = scheduler_->stats();
    EngineStats stats;
    stats.waiting_requests = s.waiting_sessions;
    stats.active_requests = s.active_sessions;
    stats.kv_used_bytes = s.kv_used_bytes;
    stats.kv_capacity_bytes = s.kv_capacity_bytes;
    return stats;
  }

 private:
  std::unique_ptr<VanillaScheduler> scheduler_;
};

GenerationUpdate FinalUpdate(uint64_t id, FinishReason reason, absl::Status status) {
  GenerationUpdate update;
  update.request_id = id;
  update.finished = true;
  update.finish_reason = reason;
  update.status = std::move(status);
  return update;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const Model& model,
                                                       const EngineOptions& options) {
  std::unique_ptr<Core> core;
  Backend& backend = model.backend();
  if (model.is_block()) {
    if (model.block_decoder() == nullptr || model.token_decoder() == nullptr) {
      return absl::FailedPreconditionError(
          "the engine needs both the block decoder and the token decoder loaded");
    }
    ASSIGN_OR_RETURN(auto context, ContextScheduler::Create(*model.block_decoder(), backend,
                                                            model.config(), options.context));
    ASSIGN_OR_RETURN(auto batcher, TokenDecodeBatcher::Create(*model.token_decoder(), backend,
                                                              options.token_decoder));
    core = std::make_unique<BlockCore>(std::move(context), std::move(batcher));
  } else {
    ASSIGN_OR_RETURN(auto scheduler, VanillaScheduler::Create(*model.vanilla(), backend,
                                                              model.config(), options.vanilla));
    core = std::make_unique<VanillaCore>(std::move(scheduler));
  }
  return std::unique_ptr<Engine>(new Engine(model, std::move(core)));
}

Engine::Engine(const Model& model, std::unique_ptr<Core> core)
    : model_(model), core_(std::move(core)) {
  stats_ = core_->Stats();
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() { Shutdown(); }

absl::StatusOr<uint64_t> Engine::Enqueue(GenerationRequest request, Callback callback) {
  RETURN_IF_ERROR(ValidateRequest(request, model_.config()));
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) return absl::FailedPreconditionError("the engine is shut down");
  const uint64_t id = next_id_++;
  callbacks_.emplace(id, std::move(callback));
  inbox_.push_back({id, std::move(request)});
  ++stats_.waiting_requests;
  wake_.notify_one();
  return id;
}

void Engine::Cancel(uint64_t request_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  cancels_.push_back(request_id);
  wake_.notify_one();
}

void Engine::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void Engine::Loop() {
  std::vector<GenerationUpdate> updates;
  while (true) {
    std::vector<Pending> arrivals;
    std::vector<uint64_t> cancels;
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] {
        return stopping_ || !inbox_.empty() || !cancels_.empty() || core_->HasWork();
      });
      arrivals.swap(inbox_);
      cancels.swap(cancels_);
      stopping = stopping_;
    }
    updates.clear();
    for (Pending& pending : arrivals) {
      absl::Status status = core_->Add(pending.id, std::move(pending.request));
      if (!status.ok()) {
        updates.push_back(FinalUpdate(pending.id,
                                      status.code() == absl::StatusCode::kCancelled
                                          ? FinishReason::kCancelled
                                          : FinishReason::kError,
                                      status));
      }
    }
    for (uint64_t id : cancels) {
      if (core_->Cancel(id)) updates.push_back(FinalUpdate(id, FinishReason::kCancelled, {}));
    }
    if (stopping) {
      std::vector<uint64_t> open;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& [id, callback] : callbacks_) open.push_back(id);
      }
      for (uint64_t id : open) {
        core_->Cancel(id);
        updates.push_back(FinalUpdate(id, FinishReason::kCancelled,
                                      absl::CancelledError("the engine is shutting down")));
      }
    } else if (core_->HasWork()) {
      core_->Step(updates);
    }
    // Deliver outside the lock, in order; drop callbacks of finished requests.
    int64_t generated = 0;
    for (GenerationUpdate& update : updates) {
      generated += static_cast<int64_t>(update.tokens.size());
      Callback callback;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = callbacks_.find(update.request_id);
        if (it == callbacks_.end()) continue;
        callback = update.finished ? std::move(it->second) : it->second;
        if (update.finished) callbacks_.erase(it);
      }
      callback(std::move(update));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const int64_t steps = stats_.steps + 1;
      const int64_t total = stats_.generated_tokens + generated;
      stats_ = core_->Stats();
      stats_.waiting_requests += static_cast<int>(inbox_.size());
      stats_.steps = steps;
      stats_.generated_tokens = total;
    }
    if (stopping) return;
  }
}

}  // namespace blockserve
