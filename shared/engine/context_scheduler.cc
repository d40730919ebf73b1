#include "shared/engine/context_scheduler.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "absl/strings/str_cat.h"
#include "shared/common/logging.h"
#include "shared/common/status_macros.h"

namespace blockserve {

absl::StatusOr<std::unique_ptr<ContextScheduler>> ContextScheduler::Create(
    const BlockDecoder& decoder, Backend& backend, const ModelConfig& config,
    const Options& options) {
  if (options.max_sessions < 1 || options.max_step_blocks < 1 || options.page_size < 1) {
    return absl::InvalidArgumentError(
        "max_sessions, max_step_blocks and page_size must be at least 1");
  }
  if (options.pipeline_groups < 0 || !(options.group_wait_s >= 0)) {
    return absl::InvalidArgumentError("pipeline_groups and group_wait_s must not be negative");
  }
  ASSIGN_OR_RETURN(PagedKvCache cache, PagedKvCache::CreateWithBudget(
                                           backend, decoder.stack_config(), options.page_size,
                                           options.kv_cache_bytes, options.kv_dtype));
  return std::unique_ptr<ContextScheduler>(
      new ContextScheduler(decoder, backend, config, options, std::move(cache)));
}

int64_t ContextScheduler::EntriesNeeded(const Session& session) const {
  const int block_length = config_.block_length;
  const int64_t prompt_blocks = static_cast<int64_t>(session.padded_prompt.size()) / block_length;
  const int64_t generated_blocks =
      (session.request.max_new_tokens + block_length - 1) / block_length;
  // The last generated block is never fed back to the block decoder.
  return prompt_blocks + generated_blocks - 1;
}

absl::Status ContextScheduler::AddSession(uint64_t id, GenerationRequest request) {
  RETURN_IF_ERROR(ValidateRequest(request, config_));
  if (sessions_.count(id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("session ", id, " already exists"));
  }
  Session session;
  session.id = id;
  const int block_length = config_.block_length;
  const size_t padding = (block_length - request.prompt.size() % block_length) % block_length;
  session.padded_prompt.assign(padding, config_.eos_token_id);
  session.padded_prompt.insert(session.padded_prompt.end(), request.prompt.begin(),
                               request.prompt.end());
  session.request = std::move(request);
  RETURN_IF_ERROR(cache_.CheckFits(EntriesNeeded(session), "block KV cache"));
  sessions_.emplace(id, std::move(session));
  waiting_.push_back(id);
  return absl::OkStatus();
}

void ContextScheduler::Finish(uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  Session& session = it->second;
  if (session.state == State::kWaiting) {
    std::erase(waiting_, id);
  } else {
    --active_sessions_;
    if (session.state == State::kDecoding) --decoding_blocks_;
    cache_.Release(session.kv);
  }
  sessions_.erase(it);
}

bool ContextScheduler::CancelSession(uint64_t id) {
  if (sessions_.count(id) == 0) return false;
  Finish(id);
  return true;
}

double ContextScheduler::Now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<ContextScheduler::GroupCounts> ContextScheduler::CountGroups() const {
  std::vector<GroupCounts> groups(std::max(1, options_.pipeline_groups));
  for (const auto& [id, session] : sessions_) {
    if (session.state == State::kWaiting) continue;
    GroupCounts& group = groups[session.group];
    ++group.sessions;
    switch (session.state) {
      case State::kWaiting:
        break;
      case State::kDecoding:
        ++group.in_flight;
        group.newest_dispatch_s = std::max(group.newest_dispatch_s, session.dispatched_s);
        break;
      case State::kPrefill:
        ++group.prefill;
        break;
      case State::kReady:
        if (group.ready++ == 0 || session.ready_since_s < group.oldest_ready_s) {
          group.oldest_ready_s = session.ready_since_s;
        }
        group.ready_round_trip_s =
            std::max(group.ready_round_trip_s, session.ready_since_s - session.dispatched_s);
        break;
    }
  }
  return groups;
}

double ContextScheduler::GroupCounts::StragglerRelease(double group_wait_s) const {
  // A block sent with the ready ones is late group_wait_s after the first of
  // them came back; one sent later gets the same round trip first.
  return std::max(oldest_ready_s, newest_dispatch_s + ready_round_trip_s) + group_wait_s;
}

ContextScheduler::GroupPick ContextScheduler::PickGroup(double now) const {
  const std::vector<GroupCounts> groups = CountGroups();
  const int n = static_cast<int>(groups.size());
  // Round robin from the group after the last one stepped, so groups
  // admitted together alternate.
  for (int k = 1; k <= n; ++k) {
    const int g = (last_group_ + k) % n;
    const GroupCounts& group = groups[g];
    // Blocks come back and step together, once all of the group's blocks
    // are back or a straggler is late (see the class comment).
    const bool whole = group.ready + group.prefill > 0 &&
                       (group.in_flight == 0 ||
                        (group.ready > 0 && now >= group.StragglerRelease(options_.group_wait_s)));
    if (whole) return {.group = g, .prefill_only = false, .straggler = group.in_flight > 0};
    // Prompts never wait: their first block joins the group's batches later.
    if (group.prefill > 0) return {.group = g, .prefill_only = true};
  }
  return {};
}

std::optional<double> ContextScheduler::NextGroupRelease() const {
  if (!Grouped()) return std::nullopt;
  std::optional<double> earliest;
  for (const GroupCounts& group : CountGroups()) {
    if (group.ready == 0 || group.in_flight == 0) continue;
    const double release = group.StragglerRelease(options_.group_wait_s);
    if (!earliest || release < *earliest) earliest = release;
  }
  return earliest;
}

void ContextScheduler::SetPipelineGroups(int groups) {
  groups = std::max(groups, 0);
  if (groups == options_.pipeline_groups) return;
  options_.pipeline_groups = groups;
  // Deal the active sessions out again, round robin in id order.
  int next = 0;
  for (auto& [id, session] : sessions_) {
    if (session.state == State::kWaiting) continue;
    session.group = Grouped() ? next++ % groups : 0;
  }
}

bool ContextScheduler::CanAdmit() const {
  if (waiting_.empty() || active_sessions_ >= options_.max_sessions) return false;
  const Session& next = sessions_.at(waiting_.front());
  return cache_.PagesFor(EntriesNeeded(next)) <= cache_.free_pages();
}

void ContextScheduler::Admit() {
  std::vector<GroupCounts> groups;
  if (Grouped() && !waiting_.empty()) groups = CountGroups();
  const double now = Now();
  while (!waiting_.empty() && active_sessions_ < options_.max_sessions) {
    Session& session = sessions_.at(waiting_.front());
    if (!cache_.Reserve(session.kv, EntriesNeeded(session)).ok()) return;  // wait for memory
    session.state = State::kPrefill;
    session.ready_since_s = now;
    if (Grouped()) {
      // The smallest group; among equals one with nothing in flight, so the
      // first block leaves with that group's next batch, not a batch later.
      int best = 0;
      for (int g = 1; g < static_cast<int>(groups.size()); ++g) {
        const auto key = [&](int i) {
          return std::make_pair(groups[i].sessions, groups[i].in_flight > 0);
        };
        if (key(g) < key(best)) best = g;
      }
      session.group = best;
      ++groups[best].sessions;
    }
    ++active_sessions_;
    waiting_.pop_front();
  }
}

bool ContextScheduler::HasStepWork() const {
  if (CanAdmit()) return true;
  if (Grouped()) return PickGroup(Now()).group >= 0;
  for (const auto& [id, session] : sessions_) {
    if (session.state == State::kPrefill || session.state == State::kReady) return true;
  }
  return false;
}

BlockJob ContextScheduler::MakeJob(Session& session, std::vector<float> context) {
  const GenerationRequest& request = session.request;
  BlockJob job;
  job.session_id = session.id;
  job.block_index = session.next_block_index++;
  job.context = std::move(context);
  job.first_position = static_cast<int64_t>(request.prompt.size()) + session.generated;
  job.num_tokens = std::min(config_.block_length, request.max_new_tokens - session.generated);
  job.sampling = request.sampling;
  job.stop_at_eos = request.stop_at_eos;
  job.eos_token_id = config_.eos_token_id;
  job.return_logprobs = request.return_logprobs;
  session.state = State::kDecoding;
  session.dispatched_s = Now();
  ++decoding_blocks_;
  return job;
}

ContextScheduler::StepOutput ContextScheduler::Step() {
  StepOutput output;
  Admit();
  // One group at a time when grouped (-1: none may step yet).
  const GroupPick pick = Grouped() ? PickGroup(Now()) : GroupPick{.group = 0};
  const int group = pick.group;
  if (Grouped() && group >= 0) last_group_ = group;
  if (pick.straggler) ++straggler_steps_;
  const auto in_step = [&](const Session& session) { return !Grouped() || session.group == group; };
  // Decode steps first (one block each, latency-critical), then prefill
  // chunks with what is left of the step's block budget.
  std::vector<Session*> step_sessions;
  std::vector<BlockDecoder::Input> inputs;
  int budget = group < 0 ? 0 : options_.max_step_blocks;
  const int block_length = config_.block_length;
  for (auto& [id, session] : sessions_) {
    if (session.state != State::kReady || budget == 0 || !in_step(session) || pick.prefill_only) {
      continue;
    }
    inputs.push_back({&session.kv, session.pending_block, OutputRows::kLast});
    step_sessions.push_back(&session);
    --budget;
  }
  for (auto& [id, session] : sessions_) {
    if (session.state != State::kPrefill || budget == 0 || !in_step(session)) continue;
    const int64_t total = static_cast<int64_t>(session.padded_prompt.size()) / block_length;
    const int64_t chunk = std::min<int64_t>(budget, total - session.prefilled_blocks);
    const bool last = session.prefilled_blocks + chunk == total;
    inputs.push_back({&session.kv,
                      absl::MakeConstSpan(session.padded_prompt)
                          .subspan(session.prefilled_blocks * block_length, chunk * block_length),
                      last ? OutputRows::kLast : OutputRows::kNone});
    step_sessions.push_back(&session);
    budget -= static_cast<int>(chunk);
  }
  last_step_blocks_ = group < 0 ? 0 : options_.max_step_blocks - budget;
  if (inputs.empty()) return output;

  absl::StatusOr<Tensor> contexts = decoder_.Forward(backend_, cache_, inputs);
  std::vector<float> host;
  if (contexts.ok()) {
    host.resize(contexts->numel());
    backend_.CopyToHost(*contexts, host.data());
  }
  absl::Status status = contexts.ok() ? backend_.Synchronize() : contexts.status();
  if (!status.ok()) {
    LOG(ERROR) << "block decoder step failed: " << status;
    for (Session* session : step_sessions) {
      GenerationUpdate failure;
      failure.request_id = session->id;
      failure.finished = true;
      failure.finish_reason = FinishReason::kError;
      failure.status = status;
      output.failures.push_back(std::move(failure));
      Finish(session->id);
    }
    return output;
  }
  const int64_t p = decoder_.hidden_size();
  int64_t row = 0;
  for (size_t i = 0; i < step_sessions.size(); ++i) {
    Session& session = *step_sessions[i];
    if (session.state == State::kPrefill) {
      session.prefilled_blocks += inputs[i].tokens.size() / block_length;
    }
    session.pending_block.clear();
    if (inputs[i].output != OutputRows::kLast) continue;
    std::vector<float> context(host.begin() + row * p, host.begin() + (row + 1) * p);
    ++row;
    output.jobs.push_back(MakeJob(session, std::move(context)));
  }
  return output;
}

std::optional<GenerationUpdate> ContextScheduler::CompleteBlock(BlockResult result) {
  auto it = sessions_.find(result.session_id);
  if (it == sessions_.end()) return std::nullopt;
  Session& session = it->second;
  if (session.state != State::kDecoding || result.block_index + 1 != session.next_block_index) {
    return std::nullopt;  // a duplicate or stale result (e.g. a retried block)
  }
  session.state = State::kReady;
  session.ready_since_s = Now();
  --decoding_blocks_;
  GenerationUpdate update;
  update.request_id = session.id;
  if (!result.status.ok()) {
    update.finished = true;
    update.finish_reason = FinishReason::kError;
    update.status = result.status;
    Finish(session.id);
    return update;
  }
  const GenerationRequest& request = session.request;
  const int expected = std::min(config_.block_length, request.max_new_tokens - session.generated);
  const auto eos = std::find(result.tokens.begin(), result.tokens.end(), config_.eos_token_id);
  const bool hit_eos = request.stop_at_eos && eos != result.tokens.end();
  size_t keep =
      hit_eos ? static_cast<size_t>(eos - result.tokens.begin()) + 1 : result.tokens.size();
  if (!hit_eos && static_cast<int>(keep) != expected) {
    update.finished = true;
    update.finish_reason = FinishReason::kError;
    update.status = absl::InternalError(
        absl::StrCat("token decoder returned ", keep, " tokens for a block of ", expected));
    Finish(session.id);
    return update;
  }
  keep = std::min<size_t>(keep, expected);
  update.tokens.assign(result.tokens.begin(), result.tokens.begin() + keep);
  if (request.return_logprobs) {
    update.logprobs.assign(result.logprobs.begin(),
                           result.logprobs.begin() + std::min(keep, result.logprobs.size()));
  }
  session.generated += static_cast<int32_t>(keep);
  if (hit_eos) {
    update.finished = true;
    update.finish_reason = FinishReason::kEos;
  } else if (session.generated >= request.max_new_tokens) {
    update.finished = true;
    update.finish_reason = FinishReason::kLength;
  }
  if (update.finished) {
    Finish(session.id);
  } else {
    session.pending_block = std::move(result.tokens);
  }
  return update;
}

ContextScheduler::Stats ContextScheduler::stats() const {
  Stats stats;
  stats.waiting_sessions = static_cast<int>(waiting_.size());
  stats.active_sessions = active_sessions_;
  stats.decoding_blocks = decoding_blocks_;
  stats.kv_used_bytes = cache_.used_bytes();
  stats.kv_capacity_bytes = cache_.capacity_bytes();
  stats.last_step_blocks = last_step_blocks_;
  stats.pipeline_groups = std::max(1, options_.pipeline_groups);
  stats.straggler_steps = straggler_steps_;
  return stats;
}

}  // namespace blockserve
