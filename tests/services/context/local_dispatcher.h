// Test helpers for the context engine: a BlockDispatcher that decodes in
// process through a WorkerEngine (the token worker's engine, on its own
// backend), with switches to inject the failures a network brings: results
// withheld, duplicated, or replaced by an error.
#ifndef BLOCKSERVE_TESTS_SERVICES_CONTEXT_LOCAL_DISPATCHER_H_
#define BLOCKSERVE_TESTS_SERVICES_CONTEXT_LOCAL_DISPATCHER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "services/context/block_dispatcher.h"
#include "services/token_worker/worker_engine.h"
#include "shared/model/model.h"

namespace blockserve::services::testing {

class LocalDispatcher : public BlockDispatcher {
 public:
  enum class Mode { kDecode, kWithhold, kDuplicate, kFail };

  explicit LocalDispatcher(const std::string& model_dir) {
    backend_ = *CreateBackend({.device = "cpu", .threads = 1});
    model_ = *Model::Load(model_dir, *backend_, {.load_block_decoder = false});
    engine_ = *WorkerEngine::Create(*model_->token_decoder(), *backend_, {}, nullptr);
    connection_ =
        engine_->Connect([this](std::vector<BlockResult> results, const WorkerEngine::Load&) {
          for (BlockResult& result : results) Deliver(std::move(result));
        });
  }
  ~LocalDispatcher() override { engine_->Shutdown(); }

  void set_mode(Mode mode) { mode_ = mode; }
  // Called with every batch as it is dispatched (before set_mode's effects).
  void set_dispatch_observer(std::function<void(const std::vector<BlockJob>&)> observer) {
    std::lock_guard<std::mutex> lock(mutex_);
    observer_ = std::move(observer);
  }

  void SetResultSink(ResultSink sink) override {
    std::lock_guard<std::mutex> lock(mutex_);
    sink_ = std::move(sink);
  }
  void DispatchBatch(std::vector<BlockJob> jobs, int parts) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++batches_;
      last_parts_ = parts;
      if (observer_) observer_(jobs);
      for (const BlockJob& job : jobs) {
        ++dispatched_;
        in_flight_.insert(job.session_id);
      }
    }
    if (mode_ == Mode::kFail) {
      for (const BlockJob& job : jobs) {
        Deliver({.session_id = job.session_id,
                 .block_index = job.block_index,
                 .status = absl::UnavailableError("injected: no token worker")});
      }
      return;
    }
    engine_->SubmitBatch(connection_, std::move(jobs));
  }
  void CancelSession(uint64_t session_id) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cancelled_.insert(session_id);
      in_flight_.erase(session_id);
    }
    engine_->Cancel(connection_, session_id);
  }
  Stats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return {.queued_blocks = 0,
            .in_flight_blocks = static_cast<int>(in_flight_.size()),
            .ready_workers = ready_workers_.load()};
  }

  std::set<uint64_t> cancelled() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cancelled_;
  }
  int dispatched() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return dispatched_;
  }
  int batches() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return batches_;
  }
  int last_parts() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_parts_;
  }
  // Ready workers reported in stats() (the engine sizes its groups by it).
  void set_ready_workers(int workers) { ready_workers_ = workers; }

 private:
  void Deliver(BlockResult result) {
    std::lock_guard<std::mutex> lock(mutex_);
    in_flight_.erase(result.session_id);
    if (mode_ == Mode::kWithhold || !sink_) return;
    if (mode_ == Mode::kDuplicate) sink_(result);
    sink_(std::move(result));
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<WorkerEngine> engine_;
  uint64_t connection_ = 0;
  std::atomic<Mode> mode_{Mode::kDecode};
  mutable std::mutex mutex_;
  ResultSink sink_;
  std::function<void(const std::vector<BlockJob>&)> observer_;
  std::set<uint64_t> in_flight_;
  std::set<uint64_t> cancelled_;
  int dispatched_ = 0;
  int batches_ = 0;
  int last_parts_ = 0;
  std::atomic<int> ready_workers_{1};
};

}  // namespace blockserve::services::testing

#endif  // BLOCKSERVE_TESTS_SERVICES_CONTEXT_LOCAL_DISPATCHER_H_
