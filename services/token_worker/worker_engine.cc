#include "services/token_worker/worker_engine.h"

#include <chrono>
#include <future>

#include "absl/strings/str_cat.h"
#include "services/token_worker/worker_metrics.h"
#include "shared/common/logging.h"
#include "shared/common/status_macros.h"

namespace blockserve::services {
namespace {

BlockResult FailedBlock(uint64_t session, uint64_t block, absl::Status status) {
  BlockResult result;
  result.session_id = session;
  result.block_index = block;
  result.status = std::move(status);
  return result;
}

}  // namespace

WorkerEngine::Op WorkerEngine::MakeOp(Op::Kind kind, uint64_t connection) {
  Op op;
  op.kind = kind;
  op.connection = connection;
  return op;
}

absl::StatusOr<std::unique_ptr<WorkerEngine>> WorkerEngine::Create(const TokenDecoder& decoder,
                                                                   Backend& backend,
                                                                   const Options& options,
                                                                   WorkerMetrics* metrics) {
  ASSIGN_OR_RETURN(auto batcher, TokenDecodeBatcher::Create(decoder, backend, options.batcher));
  return std::unique_ptr<WorkerEngine>(new WorkerEngine(std::move(batcher), options, metrics));
}

WorkerEngine::WorkerEngine(std::unique_ptr<TokenDecodeBatcher> batcher, const Options& options,
                           WorkerMetrics* metrics)
    : batcher_(std::move(batcher)), options_(options), metrics_(metrics) {
  load_.max_active_blocks = options_.batcher.max_active_blocks;
  thread_ = std::thread([this] { Loop(); });
}

WorkerEngine::~WorkerEngine() { Shutdown(); }

double WorkerEngine::NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint64_t WorkerEngine::Connect(Sink sink) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t id = next_connection_++;
  ++live_connections_;
  Op op = MakeOp(Op::Kind::kConnect, id);
  op.sink = std::move(sink);
  inbox_.push_back(std::move(op));
  wake_.notify_one();
  return id;
}

void WorkerEngine::Disconnect(uint64_t connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  inbox_.push_back(MakeOp(Op::Kind::kDisconnect, connection));
  wake_.notify_one();
}

void WorkerEngine::Submit(uint64_t connection, BlockJob job) {
  std::vector<BlockJob> jobs;
  jobs.push_back(std::move(job));
  SubmitBatch(connection, std::move(jobs));
}

void WorkerEngine::SubmitBatch(uint64_t connection, std::vector<BlockJob> jobs) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (BlockJob& job : jobs) {
    ++pending_submits_;
    Op op = MakeOp(Op::Kind::kSubmit, connection);
    op.job = std::move(job);
    inbox_.push_back(std::move(op));
  }
  wake_.notify_one();
}

void WorkerEngine::Cancel(uint64_t connection, uint64_t session_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Op op = MakeOp(Op::Kind::kCancel, connection);
  op.session_id = session_id;
  inbox_.push_back(std::move(op));
  wake_.notify_one();
}

void WorkerEngine::SetDraining() {
  std::lock_guard<std::mutex> lock(mutex_);
  load_.draining = true;
  broadcast_load_ = true;
  wake_.notify_one();
}

WorkerEngine::Load WorkerEngine::load() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return load_;
}

int WorkerEngine::outstanding() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_submits_ + load_.queued_blocks + load_.active_blocks;
}

int WorkerEngine::connections() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return live_connections_;
}

void WorkerEngine::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

absl::Status WorkerEngine::WarmUp(int context_size) {
  auto done = std::make_shared<std::promise<absl::Status>>();
  const uint64_t connection = Connect([done](std::vector<BlockResult> results, const Load&) {
    if (!results.empty()) done->set_value(results[0].status);
  });
  BlockJob job;
  job.session_id = 1;
  job.context.assign(context_size, 0.0f);
  job.num_tokens = 1;
  job.stop_at_eos = false;
  Submit(connection, std::move(job));
  absl::Status status = done->get_future().get();
  Disconnect(connection);
  return status;
}

void WorkerEngine::DropLocal(uint64_t local) {
  auto it = origins_.find(local);
  if (it == origins_.end()) return;
  batcher_->CancelSession(local);
  local_ids_.erase({it->second.connection, it->second.session_id});
  origins_.erase(it);
  if (metrics_) metrics_->blocks_cancelled.Increment();
}

void WorkerEngine::Apply(Op& op, std::map<uint64_t, std::vector<BlockResult>>& replies) {
  switch (op.kind) {
    case Op::Kind::kConnect:
      sinks_[op.connection] = std::move(op.sink);
      replies[op.connection];  // greet with the load
      return;
    case Op::Kind::kDisconnect: {
      std::vector<uint64_t> locals;
      for (const auto& [local, origin] : origins_) {
        if (origin.connection == op.connection) locals.push_back(local);
      }
      for (uint64_t local : locals) DropLocal(local);
      if (sinks_.erase(op.connection) != 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        --live_connections_;
      }
      replies.erase(op.connection);
      return;
    }
    case Op::Kind::kCancel: {
      auto it = local_ids_.find({op.connection, op.session_id});
      if (it != local_ids_.end()) DropLocal(it->second);
      return;
    }
    case Op::Kind::kSubmit: {
      if (sinks_.count(op.connection) == 0) return;  // the stream is gone
      const uint64_t session = op.job.session_id;
      const uint64_t block = op.job.block_index;
      // A session has one block in flight; a new one replaces a stale one.
      auto existing = local_ids_.find({op.connection, session});
      if (existing != local_ids_.end()) DropLocal(existing->second);
      const uint64_t local = next_local_id_++;
      op.job.session_id = local;
      absl::Status status = batcher_->Submit(std::move(op.job));
      if (!status.ok()) {
        if (metrics_) metrics_->blocks_failed.Increment();
        replies[op.connection].push_back(FailedBlock(session, block, status));
        return;
      }
      origins_[local] = {
          .connection = op.connection, .session_id = session, .arrival_s = NowSeconds()};
      local_ids_[{op.connection, session}] = local;
      return;
    }
  }
}

void WorkerEngine::Loop() {
  while (true) {
    std::vector<Op> ops;
    bool broadcast = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] {
        return stopping_ || !inbox_.empty() || broadcast_load_ || !batcher_->idle();
      });
      if (stopping_) return;
      ops.swap(inbox_);
      broadcast = broadcast_load_;
      broadcast_load_ = false;
    }
    std::map<uint64_t, std::vector<BlockResult>> replies;
    int submits = 0;
    for (Op& op : ops) {
      if (op.kind == Op::Kind::kSubmit) ++submits;
      Apply(op, replies);
    }
    if (!batcher_->idle()) {
      const double start = NowSeconds();
      std::vector<BlockResult> finished = batcher_->Step();
      const double now = NowSeconds();
      if (metrics_) {
        metrics_->step_seconds.Observe(now - start);
        metrics_->batch_size_histogram.Observe(batcher_->last_step_batch());
      }
      for (BlockResult& result : finished) {
        auto it = origins_.find(result.session_id);
        if (it == origins_.end()) continue;  // cancelled meanwhile
        const Origin origin = it->second;
        origins_.erase(it);
        local_ids_.erase({origin.connection, origin.session_id});
        if (metrics_) {
          metrics_->block_seconds.Observe(now - origin.arrival_s);
          (result.status.ok() ? metrics_->blocks_ok : metrics_->blocks_failed).Increment();
          metrics_->tokens.Increment(static_cast<double>(result.tokens.size()));
        }
        result.session_id = origin.session_id;
        replies[origin.connection].push_back(std::move(result));
      }
    }
    Load load;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pending_submits_ -= submits;
      load_.queued_blocks = batcher_->queued_blocks();
      load_.active_blocks = batcher_->active_blocks();
      load_.last_batch = batcher_->last_step_batch();
      load = load_;
      if (metrics_) metrics_->connections.Set(live_connections_);
    }
    if (metrics_) {
      metrics_->queued_blocks.Set(load.queued_blocks);
      metrics_->active_blocks.Set(load.active_blocks);
      metrics_->batch_size.Set(load.last_batch);
    }
    if (broadcast) {
      for (const auto& [connection, sink] : sinks_) replies[connection];
    }
    for (auto& [connection, results] : replies) {
      auto sink = sinks_.find(connection);
      if (sink != sinks_.end()) sink->second(std::move(results), load);
    }
  }
}

}  // namespace blockserve::services
