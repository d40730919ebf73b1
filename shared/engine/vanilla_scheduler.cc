#include "shared/engine/vanilla_scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "shared/common/logging.h"
#include "shared/common/status_macros.h"

namespace blockserve {

absl::StatusOr<std::unique_ptr<VanillaScheduler>> VanillaScheduler::Create(
    const VanillaModel& model, Backend& backend, const ModelConfig& config,
    const Options& options) {
  if (options.max_sessions < 1 || options.max_step_tokens < 1 || options.page_size < 1) {
    return absl::InvalidArgumentError(
        "max_sessions, max_step_tokens and page_size must be at least 1");
  }
  ASSIGN_OR_RETURN(PagedKvCache cache,
                   PagedKvCache::CreateWithBudget(backend, model.stack_config(), options.page_size,
                                                  options.kv_cache_bytes, options.kv_dtype));
  return std::unique_ptr<VanillaScheduler>(
      new VanillaScheduler(model, backend, config, options, std::move(cache)));
}

int64_t VanillaScheduler::EntriesNeeded(const Session& session) const {
  // The last sampled token is never fed back.
  return static_cast<int64_t>(session.request.prompt.size()) + session.request.max_new_tokens - 1;
}

absl::Status VanillaScheduler::AddSession(uint64_t id, GenerationRequest request) {
  RETURN_IF_ERROR(ValidateRequest(request, config_));
  if (sessions_.count(id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("session ", id, " already exists"));
  }
  Session session;
  session.id = id;
  session.request = std::move(request);
  RETURN_IF_ERROR(cache_.CheckFits(EntriesNeeded(session), "KV cache"));
  sessions_.emplace(id, std::move(session));
  waiting_.push_back(id);
  return absl::OkStatus();
}

void VanillaScheduler::Finish(uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  if (it->second.admitted) {
    --active_sessions_;
    cache_.Release(it->second.kv);
  } else {
    std::erase(waiting_, id);
  }
  sessions_.erase(it);
}

bool VanillaScheduler::CancelSession(uint64_t id) {
  if (sessions_.count(id) == 0) return false;
  Finish(id);
  return true;
}

void VanillaScheduler::Admit() {
  while (!waiting_.empty() && active_sessions_ < options_.max_sessions) {
    Session& session = sessions_.at(waiting_.front());
    if (!cache_.Reserve(session.kv, EntriesNeeded(session)).ok()) return;
    session.admitted = true;
    ++active_sessions_;
    waiting_.pop_front();
  }
}

bool VanillaScheduler::HasStepWork() const {
  if (active_sessions_ > 0) return true;
  if (waiting_.empty()) return false;
  const Session& next = sessions_.at(waiting_.front());
  return cache_.PagesFor(EntriesNeeded(next)) <= cache_.free_pages();
}

std::vector<GenerationUpdate> VanillaScheduler::Step() {
  std::vector<GenerationUpdate> updates;
  Admit();
  std::vector<Session*> step_sessions;
  std::vector<VanillaModel::Input> inputs;
  int budget = options_.max_step_tokens;
  for (auto& [id, session] : sessions_) {  // decode first: one token each
    if (!session.admitted || session.last_token < 0 || budget == 0) continue;
    inputs.push_back({&session.kv, absl::MakeConstSpan(&session.last_token, 1), OutputRows::kLast});
    step_sessions.push_back(&session);
    --budget;
  }
  for (auto& [id, session] : sessions_) {  // then prefill chunks
    const int64_t prompt = static_cast<int64_t>(session.request.prompt.size());
    if (!session.admitted || session.last_token >= 0 || budget == 0) continue;
    const int64_t chunk = std::min<int64_t>(budget, prompt - session.prefilled);
    const bool last = session.prefilled + chunk == prompt;
    inputs.push_back({&session.kv,
                      absl::MakeConstSpan(session.request.prompt).subspan(session.prefilled, chunk),
                      last ? OutputRows::kLast : OutputRows::kNone});
    step_sessions.push_back(&session);
    budget -= static_cast<int>(chunk);
  }
  last_step_rows_ = options_.max_step_tokens - budget;
  if (inputs.empty()) return updates;

  std::vector<SamplingRow> rows;
  std::vector<Session*> sampled;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].output != OutputRows::kLast) continue;
    Session& session = *step_sessions[i];
    const int64_t position =
        static_cast<int64_t>(session.request.prompt.size()) + session.generated;
    rows.push_back(session.request.sampling.Row(position));
    sampled.push_back(&session);
  }
  const int64_t n = static_cast<int64_t>(sampled.size());
  std::vector<int32_t> tokens(n);
  std::vector<float> logprobs(n);
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Tensor logits, model_.Forward(backend_, cache_, inputs));
    ASSIGN_OR_RETURN(Tensor token_tensor, backend_.Empty(DType::kI32, {n}));
    ASSIGN_OR_RETURN(Tensor logprob_tensor, backend_.Empty(DType::kF32, {n}));
    if (n > 0) {
      backend_.Sample(logits, rows, token_tensor, logprob_tensor);
      backend_.CopyToHost(token_tensor, tokens.data());
      backend_.CopyToHost(logprob_tensor, logprobs.data());
    }
    return backend_.Synchronize();
  }();
  if (!status.ok()) {
    LOG(ERROR) << "vanilla step failed: " << status;
    for (Session* session : step_sessions) {
      GenerationUpdate failure;
      failure.request_id = session->id;
      failure.finished = true;
      failure.finish_reason = FinishReason::kError;
      failure.status = status;
      updates.push_back(std::move(failure));
      Finish(session->id);
    }
    return updates;
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    Session& session = *step_sessions[i];
    if (session.last_token < 0) session.prefilled += inputs[i].tokens.size();
  }
  for (int64_t i = 0; i < n; ++i) {
    Session& session = *sampled[i];
    GenerationUpdate update;
    update.request_id = session.id;
    update.tokens.push_back(tokens[i]);
    if (session.request.return_logprobs) update.logprobs.push_back(logprobs[i]);
    session.last_token = tokens[i];
    ++session.generated;
    if (session.request.stop_at_eos && tokens[i] == config_.eos_token_id) {
      update.finished = true;
      update.finish_reason = FinishReason::kEos;
    } else if (session.generated >= session.request.max_new_tokens) {
      update.finished = true;
      update.finish_reason = FinishReason::kLength;
    }
    if (update.finished) Finish(session.id);
    updates.push_back(std::move(update));
  }
  return updates;
}

VanillaScheduler::Stats VanillaScheduler::stats() const {
  Stats stats;
  stats.waiting_sessions = static_cast<int>(waiting_.size());
  stats.active_sessions = active_sessions_;
  stats.kv_used_bytes = cache_.used_bytes();
  stats.kv_capacity_bytes = cache_.capacity_bytes();
  stats.last_step_rows = last_step_rows_;
  return stats;
}

}  // namespace blockserve
