#include "services/context/worker_pool.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "services/common/proto_convert.h"
#include "services/context/context_metrics.h"
#include "shared/common/logging.h"

namespace blockserve::services {
namespace {

BlockResult FailedBlock(const BlockJob& job, absl::Status status) {
  BlockResult result;
  result.session_id = job.session_id;
  result.block_index = job.block_index;
  result.status = std::move(status);
  return result;
}

}  // namespace

struct WorkerPool::Worker {
  std::string address;
  std::unique_ptr<v1::TokenWorker::StubInterface> stub;
  WorkerStream* stream = nullptr;  // valid while non-null (under mutex_)
  uint64_t generation = 0;         // of the current stream
  bool ready = false;              // the current stream was greeted
  bool compatible = true;
  bool worker_draining = false;
  bool removed = false;
  int outstanding = 0;
  v1::WorkerLoad reported;
  double next_connect_s = 0;
  double backoff_s = 0;
  prometheus::Counter* dispatched = nullptr;
  prometheus::Gauge* in_flight_gauge = nullptr;

  bool accepting() const { return compatible && !worker_draining && !removed; }
};

std::unique_ptr<v1::TokenWorker::StubInterface> MakeWorkerStub(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // One connection per worker address, not shared with other channels.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return v1::TokenWorker::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

WorkerPool::WorkerPool(Options options, ContextMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
}

WorkerPool::~WorkerPool() { Shutdown(); }

double WorkerPool::NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void WorkerPool::SetResultSink(ResultSink sink) {
  std::lock_guard<std::mutex> lock(sink_mutex_);
  sink_ = std::move(sink);
}

void WorkerPool::Deliver(std::vector<BlockResult>& results) {
  if (results.empty()) return;
  std::lock_guard<std::mutex> lock(sink_mutex_);
  for (BlockResult& result : results) {
    if (sink_) sink_(std::move(result));
  }
  results.clear();
}

void WorkerPool::UpdateWorkers(const std::set<std::string>& addresses) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (shutting_down_) return;
  for (const std::string& address : addresses) {
    auto it = workers_.find(address);
    if (it != workers_.end()) {
      if (it->second->removed) LOG(INFO) << "worker pool: " << address << " is back";
      it->second->removed = false;
      continue;
    }
    auto worker = std::make_unique<Worker>();
    worker->address = address;
    worker->stub = options_.make_stub ? options_.make_stub(address) : MakeWorkerStub(address);
    worker->backoff_s = options_.reconnect_min_s;
    if (metrics_ != nullptr) {
      worker->dispatched = &metrics_->blocks_dispatched.Add({{"worker", address}});
      worker->in_flight_gauge = &metrics_->worker_in_flight.Add({{"worker", address}});
    }
    LOG(INFO) << "worker pool: adding " << address;
    workers_.emplace(address, std::move(worker));
  }
  for (auto& [address, worker] : workers_) {
    if (addresses.count(address) == 0 && !worker->removed) {
      LOG(INFO) << "worker pool: draining and removing " << address;
      worker->removed = true;
    }
  }
  tick_cv_.notify_one();
}

std::vector<WorkerPool::WorkerStatus> WorkerPool::workers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<WorkerStatus> out;
  for (const auto& [address, worker] : workers_) {
    out.push_back({.address = address,
                   .ready = worker->ready && worker->stream != nullptr,
                   .accepting = worker->accepting(),
                   .removed = worker->removed,
                   .outstanding = worker->outstanding,
                   .reported = worker->reported});
  }
  return out;
}

void WorkerPool::DispatchBatch(std::vector<BlockJob> jobs, int parts) {
  std::vector<BlockResult> failed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_) {
      for (const BlockJob& job : jobs) {
        failed.push_back(FailedBlock(job, absl::UnavailableError("the worker pool is shut down")));
      }
    } else {
      const double now = NowSeconds();
      const size_t count = jobs.size();
      const size_t part_count = std::clamp<size_t>(parts, 1, std::max<size_t>(count, 1));
      const uint64_t first_batch = next_batch_;
      next_batch_ += part_count;
      for (size_t i = 0; i < count; ++i) {
        // Job i of `count` in part i * parts / count: contiguous, near-equal.
        pending_.push_back({.job = std::move(jobs[i]),
                            .since_s = now,
                            .attempts = 0,
                            .batch = first_batch + i * part_count / count});
      }
      PumpLocked(now);
    }
  }
  Deliver(failed);
}

void WorkerPool::CancelSession(uint64_t session_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase_if(pending_, [&](const Pending& p) { return p.job.session_id == session_id; });
  auto it = in_flight_.find(session_id);
  if (it == in_flight_.end()) return;
  const std::string worker = it->second.worker;
  in_flight_.erase(it);
  CancelAtWorkerLocked(worker, session_id);
  PumpLocked(NowSeconds());
}

BlockDispatcher::Stats WorkerPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Stats stats;
  stats.queued_blocks = static_cast<int>(pending_.size());
  stats.in_flight_blocks = static_cast<int>(in_flight_.size());
  for (const auto& [address, worker] : workers_) {
    if (worker->ready && worker->stream != nullptr && worker->accepting()) ++stats.ready_workers;
  }
  return stats;
}

void WorkerPool::CancelAtWorkerLocked(const std::string& address, uint64_t session_id) {
  auto it = workers_.find(address);
  if (it == workers_.end()) return;
  Worker& worker = *it->second;
  worker.outstanding = std::max(0, worker.outstanding - 1);
  if (worker.stream != nullptr) {
    v1::WorkerRequest cancel;
    cancel.mutable_cancel()->set_session_id(session_id);
    worker.stream->Send(std::move(cancel));
  }
}

void WorkerPool::PumpLocked(double now) {
  std::vector<WorkerSlot> slots;
  std::vector<Worker*> candidates;
  while (!pending_.empty()) {
    slots.clear();
    candidates.clear();
    for (auto& [address, worker] : workers_) {
      slots.push_back({.outstanding = worker->outstanding,
                       .max_in_flight = options_.max_in_flight_per_worker,
                       .ready = worker->ready && worker->stream != nullptr,
                       .accepting = worker->accepting()});
      candidates.push_back(worker.get());
    }
    const int pick = policy_.Pick(slots);
    if (pick < 0) break;
    Worker& worker = *candidates[pick];
    // The front block and the rest of its batch (queued together, so
    // adjacent), as many as the worker has room for, in one message.
    const uint64_t batch = pending_.front().batch;
    const size_t room = static_cast<size_t>(options_.max_in_flight_per_worker - worker.outstanding);
    size_t take = 1;
    while (batch != 0 && take < room && take < pending_.size() && pending_[take].batch == batch) {
      ++take;
    }
    v1::WorkerRequest request;
    if (take == 1) {
      ToProto(pending_.front().job, request.mutable_block());
    } else {
      for (size_t i = 0; i < take; ++i) {
        ToProto(pending_[i].job, request.mutable_blocks()->add_blocks());
      }
    }
    if (!worker.stream->Send(std::move(request))) {
      // The stream is closing; its end will be reported. Try another worker.
      worker.ready = false;
      continue;
    }
    for (size_t i = 0; i < take; ++i) {
      Pending next = std::move(pending_.front());
      pending_.pop_front();
      ++worker.outstanding;
      if (worker.dispatched != nullptr) worker.dispatched->Increment();
      const uint64_t session = next.job.session_id;
      in_flight_[session] = {.job = std::move(next.job),
                             .worker = worker.address,
                             .sent_s = now,
                             .attempts = next.attempts + 1};
    }
  }
}

void WorkerPool::RequeueLocked(BlockJob job, int attempts, double now, const absl::Status& cause,
                               uint64_t batch, std::vector<BlockResult>& failed) {
  if (attempts >= options_.max_attempts) {
    failed.push_back(FailedBlock(
        job, absl::Status(cause.code(), absl::StrCat("block ", job.block_index, " failed after ",
                                                     attempts, " attempts: ", cause.message()))));
    return;
  }
  if (metrics_ != nullptr) metrics_->block_retries.Increment();
  pending_.push_front(
      {.job = std::move(job), .since_s = now, .attempts = attempts, .batch = batch});
}

bool WorkerPool::CompatibleLocked(const v1::ModelInfo& model, const std::string& address) const {
  const v1::ModelInfo& want = options_.model;
  if (want.context_size() == 0) return true;  // nothing to compare with
  if (model.context_size() == want.context_size() && model.block_length() == want.block_length() &&
      model.vocab_size() == want.vocab_size()) {
    return true;
  }
  LOG(ERROR) << "worker pool: " << address << " serves a different model (context size "
             << model.context_size() << ", block length " << model.block_length() << ", vocab "
             << model.vocab_size() << "; this service has " << want.context_size() << ", "
             << want.block_length() << ", " << want.vocab_size() << "): not using it";
  return false;
}

void WorkerPool::OnWorkerReply(const std::string& address, uint64_t generation,
                               const v1::WorkerReply& reply) {
  std::vector<BlockResult> results;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = workers_.find(address);
    if (it == workers_.end() || it->second->generation != generation) return;
    Worker& worker = *it->second;
    const double now = NowSeconds();
    if (reply.has_info()) {
      worker.compatible = CompatibleLocked(reply.info().model(), address);
      worker.ready = true;
      worker.backoff_s = options_.reconnect_min_s;
      LOG(INFO) << "worker pool: connected to " << address;
    }
    worker.reported = reply.load();
    worker.worker_draining = reply.load().draining();
    for (const v1::DecodedBlock& block : reply.results()) {
      auto flight = in_flight_.find(block.session_id());
      if (flight == in_flight_.end() || flight->second.job.block_index != block.block_index()) {
        continue;  // cancelled, or a late duplicate of a retried block
      }
      if (flight->second.worker == address) {
        worker.outstanding = std::max(0, worker.outstanding - 1);
      } else {
        // A retried block answered by its first worker: withdraw the retry.
        CancelAtWorkerLocked(flight->second.worker, block.session_id());
      }
      if (metrics_ != nullptr) metrics_->round_trip_seconds.Observe(now - flight->second.sent_s);
      in_flight_.erase(flight);
      results.push_back(FromProto(block));
    }
    PumpLocked(now);
  }
  Deliver(results);
}

void WorkerPool::OnStreamDone(const std::string& address, uint64_t generation,
                              const grpc::Status& status) {
  std::vector<BlockResult> failed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --live_streams_;
    streams_done_.notify_all();
    auto it = workers_.find(address);
    if (it == workers_.end() || it->second->generation != generation) return;
    Worker& worker = *it->second;
    const bool was_ready = worker.ready;
    worker.stream = nullptr;
    worker.ready = false;
    worker.outstanding = 0;
    const double now = NowSeconds();
    // A working stream that ends is news; failed reconnection attempts
    // (every backoff period) are not.
    if (!shutting_down_ && !worker.removed && was_ready) {
      LOG(WARNING) << "worker pool: stream to " << address << " ended"
                   << (status.ok() ? "" : absl::StrCat(": ", status.error_message()));
    }
    const absl::Status cause =
        absl::UnavailableError(absl::StrCat("token worker ", address, " went away"));
    std::vector<uint64_t> sessions;
    for (const auto& [session, flight] : in_flight_) {
      if (flight.worker == address) sessions.push_back(session);
    }
    // Its blocks move on together, as one batch.
    const uint64_t batch = next_batch_++;
    for (uint64_t session : sessions) {
      InFlight flight = std::move(in_flight_.at(session));
      in_flight_.erase(session);
      RequeueLocked(std::move(flight.job), flight.attempts, now, cause, batch, failed);
    }
    if (worker.removed || shutting_down_) {
      if (worker.removed) EraseWorkerLocked(address);
    } else {
      worker.next_connect_s = now + worker.backoff_s;
      worker.backoff_s = std::min(options_.reconnect_max_s, worker.backoff_s * 2);
    }
    if (!shutting_down_) PumpLocked(now);
  }
  Deliver(failed);
}

void WorkerPool::EraseWorkerLocked(const std::string& address) {
  auto it = workers_.find(address);
  if (it == workers_.end()) return;
  if (metrics_ != nullptr) {
    if (it->second->dispatched) metrics_->blocks_dispatched.Remove(it->second->dispatched);
    if (it->second->in_flight_gauge) metrics_->worker_in_flight.Remove(it->second->in_flight_gauge);
  }
  LOG(INFO) << "worker pool: removed " << address;
  workers_.erase(it);
}

void WorkerPool::PublishLocked() {
  if (metrics_ == nullptr) return;
  int ready = 0;
  int configured = 0;
  for (const auto& [address, worker] : workers_) {
    if (worker->ready && worker->stream != nullptr && worker->accepting()) ++ready;
    if (!worker->removed) ++configured;
    if (worker->in_flight_gauge != nullptr) worker->in_flight_gauge->Set(worker->outstanding);
  }
  metrics_->ready_workers.Set(ready);
  metrics_->configured_workers.Set(configured);
  metrics_->queued_blocks.Set(static_cast<double>(pending_.size()));
  metrics_->in_flight_blocks.Set(static_cast<double>(in_flight_.size()));
}

void WorkerPool::MaintenanceLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(tick_mutex_);
      tick_cv_.wait_for(lock, std::chrono::duration<double>(options_.tick_s),
                        [&] { return stop_ticks_; });
      if (stop_ticks_) return;
    }
    std::vector<BlockResult> failed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (shutting_down_) continue;
      const double now = NowSeconds();
      std::vector<std::string> gone;
      for (auto& [address, worker] : workers_) {
        if (worker->removed) {
          if (worker->outstanding > 0) continue;  // let its blocks finish
          if (worker->stream != nullptr) {
            worker->stream->CloseWrites();  // the worker then ends the stream
          } else {
            gone.push_back(address);
          }
          continue;
        }
        if (worker->stream == nullptr && now >= worker->next_connect_s) {
          ++worker->generation;
          ++live_streams_;
          worker->stream =
              WorkerStream::Start(worker->stub.get(), this, address, worker->generation);
        }
      }
      for (const std::string& address : gone) EraseWorkerLocked(address);
      // Blocks stuck at a worker: retry elsewhere.
      std::vector<uint64_t> late;
      for (const auto& [session, flight] : in_flight_) {
        if (now - flight.sent_s > options_.block_timeout_s) late.push_back(session);
      }
      const uint64_t batch = next_batch_++;
      for (uint64_t session : late) {
        InFlight flight = std::move(in_flight_.at(session));
        in_flight_.erase(session);
        CancelAtWorkerLocked(flight.worker, session);
        LOG(WARNING) << "worker pool: block " << flight.job.block_index << " of session " << session
                     << " timed out at " << flight.worker;
        RequeueLocked(std::move(flight.job), flight.attempts, now,
                      absl::DeadlineExceededError(
                          absl::StrCat("no result within ", options_.block_timeout_s, " s")),
                      batch, failed);
      }
      // Blocks nobody could take in time.
      std::erase_if(pending_, [&](Pending& p) {
        if (now - p.since_s <= options_.no_worker_timeout_s) return false;
        failed.push_back(FailedBlock(
            p.job, absl::UnavailableError(absl::StrCat(
                       "no token worker could take the block within ", options_.no_worker_timeout_s,
                       " s (", workers_.size(), " workers configured)"))));
        return true;
      });
      PumpLocked(now);
      PublishLocked();
    }
    Deliver(failed);
  }
}

void WorkerPool::Shutdown() {
  std::vector<BlockResult> failed;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!shutting_down_) {
      shutting_down_ = true;
      const absl::Status status = absl::UnavailableError("the worker pool is shut down");
      for (Pending& p : pending_) failed.push_back(FailedBlock(p.job, status));
      pending_.clear();
      for (auto& [session, flight] : in_flight_) failed.push_back(FailedBlock(flight.job, status));
      in_flight_.clear();
      for (auto& [address, worker] : workers_) {
        if (worker->stream != nullptr) worker->stream->Cancel();
      }
    }
    // Streams call back into the pool until they are done.
    streams_done_.wait(lock, [&] { return live_streams_ == 0; });
  }
  {
    std::lock_guard<std::mutex> lock(tick_mutex_);
    stop_ticks_ = true;
  }
  tick_cv_.notify_one();
  if (maintenance_.joinable()) maintenance_.join();
  Deliver(failed);
}

}  // namespace blockserve::services
