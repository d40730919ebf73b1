// WorkerPool over real gRPC streams to in-process token workers on
// 127.0.0.1 (port 0): least-outstanding spreading, re-dispatch when a
// worker's stream breaks or a block times out, draining removal, no-worker
// and incompatible-worker timeouts, cancellation.
#include "services/context/worker_pool.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/common/proto_convert.h"
#include "services/common/write_queue.h"
#include "services/context/context_metrics.h"
#include "services/token_worker/token_worker_service.h"
#include "services/token_worker/worker_metrics.h"
#include "shared/metrics/metrics_registry.h"
#include "tests/services/test_blocks.h"

namespace blockserve::services {
namespace {

using testing::DecodeAlone;
using ::testing::HasSubstr;
using testing::MakeJob;
using testing::ModelDir;

const char kModel[] = "block_l4_r2";

// A real token worker (TokenWorkerService + WorkerEngine) in this process.
class InProcessWorker {
 public:
  InProcessWorker() {
    backend_ = *CreateBackend({.device = "cpu", .threads = 1});
    model_ = *Model::Load(ModelDir(kModel), *backend_, {.load_block_decoder = false});
    engine_ = *WorkerEngine::Create(*model_->token_decoder(), *backend_, {}, &metrics_);
    ToProto(model_->config(), kModel, &info_);
    service_.SetEngine(engine_.get(), info_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  ~InProcessWorker() { Stop(); }
  void Stop() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    server_.reset();
    engine_->Shutdown();
  }
  const std::string& address() const { return address_; }
  int blocks_ok() const { return static_cast<int>(metrics_.blocks_ok.Value()); }
  const v1::ModelInfo& info() const { return info_; }

 private:
  metrics::MetricsRegistry registry_;
  WorkerMetrics metrics_{registry_};
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<WorkerEngine> engine_;
  ServingState state_;
  TokenWorkerService service_{&state_};
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  v1::ModelInfo info_;
};

// A worker that greets and then never answers: its blocks stay in flight.
class SilentWorker final : public v1::TokenWorker::CallbackService {
 public:
  explicit SilentWorker(const v1::ModelInfo& info) : info_(info) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  ~SilentWorker() override { Stop(); }
  void Stop() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    server_.reset();
  }
  const std::string& address() const { return address_; }
  int received() const { return received_.load(); }
  int batches() const { return batches_.load(); }  // multi-block messages

  grpc::ServerBidiReactor<v1::WorkerRequest, v1::WorkerReply>* DecodeBlocks(
      grpc::CallbackServerContext*) override {
    class Reactor final : public grpc::ServerBidiReactor<v1::WorkerRequest, v1::WorkerReply> {
     public:
      Reactor(SilentWorker* owner) : owner_(owner), writes_(this) {
        v1::WorkerReply hello;
        *hello.mutable_info()->mutable_model() = owner_->info_;
        hello.mutable_load();
        writes_.Write(hello);
        StartRead(&request_);
      }
      void OnReadDone(bool ok) override {
        if (!ok) {
          writes_.Finish(grpc::Status::OK);
          return;
        }
        if (request_.has_block()) owner_->received_.fetch_add(1);
        if (request_.has_blocks()) {
          owner_->received_.fetch_add(request_.blocks().blocks_size());
          owner_->batches_.fetch_add(1);
        }
        StartRead(&request_);
      }
      void OnWriteDone(bool ok) override { writes_.OnWriteDone(ok); }
      void OnCancel() override { writes_.OnCancel(); }
      void OnDone() override {
        writes_.OnDone();
        delete this;
      }

     private:
      SilentWorker* owner_;
      WriteQueue<grpc::ServerBidiReactor<v1::WorkerRequest, v1::WorkerReply>, v1::WorkerReply>
          writes_;
      v1::WorkerRequest request_;
    };
    return new Reactor(this);
  }

 private:
  v1::ModelInfo info_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::atomic<int> received_{0};
  std::atomic<int> batches_{0};
};

// Collects results delivered by the pool.
struct Results {
  std::mutex mutex;
  std::condition_variable changed;
  std::map<uint64_t, BlockResult> by_session;

  BlockDispatcher::ResultSink Sink() {
    return [this](BlockResult r) {
      std::lock_guard<std::mutex> lock(mutex);
      by_session[r.session_id] = std::move(r);
      changed.notify_all();
    };
  }
  bool WaitFor(size_t count, double seconds = 20) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, std::chrono::duration<double>(seconds),
                            [&] { return by_session.size() >= count; });
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex);
    return by_session.size();
  }
};

template <typename Predicate>
bool Eventually(Predicate predicate, double seconds = 10) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return predicate();
}

class WorkerPoolTest : public ::testing::Test {
 protected:
  WorkerPool::Options Options() {
    WorkerPool::Options options;
    options.max_in_flight_per_worker = 4;
    options.model = info_;
    return options;
  }
  int ContextSize() const { return info_.context_size(); }
  // A pool over `addresses` whose results go to `results` (declare
  // `results` first: it must outlive the pool).
  std::unique_ptr<WorkerPool> StartPool(const WorkerPool::Options& options, Results& results,
                                        const std::set<std::string>& addresses) {
    auto pool = std::make_unique<WorkerPool>(options, &metrics_);
    pool->SetResultSink(results.Sink());
    pool->UpdateWorkers(addresses);
    return pool;
  }
  bool AllReady(const WorkerPool& pool, size_t count) {
    return Eventually([&] {
      auto workers = pool.workers();
      size_t ready = 0;
      for (const auto& w : workers) ready += w.ready;
      return ready == count;
    });
  }

  void SetUp() override {
    InProcessWorker probe;
    info_ = probe.info();
  }

  v1::ModelInfo info_;
  metrics::MetricsRegistry registry_;
  ContextMetrics metrics_{registry_};
};

TEST_F(WorkerPoolTest, BlocksSpreadOverTheWorkersAndDecodeCorrectly) {
  InProcessWorker a, b;
  Results results;
  auto pool = StartPool(Options(), results, {a.address(), b.address()});
  ASSERT_TRUE(AllReady(*pool, 2));
  std::vector<BlockJob> jobs;
  for (uint64_t s = 1; s <= 24; ++s) {
    jobs.push_back(MakeJob(ContextSize(), s, 50 + s, 1 + s % 4));
    pool->Dispatch(jobs.back());
  }
  ASSERT_TRUE(results.WaitFor(jobs.size()));
  for (const BlockJob& job : jobs) {
    const BlockResult& got = results.by_session.at(job.session_id);
    ASSERT_TRUE(got.status.ok()) << got.status;
    EXPECT_EQ(got.tokens, DecodeAlone(ModelDir(kModel), job).tokens) << job.session_id;
  }
  EXPECT_GT(a.blocks_ok(), 0);
  EXPECT_GT(b.blocks_ok(), 0);
  EXPECT_EQ(a.blocks_ok() + b.blocks_ok(), 24);
  EXPECT_EQ(pool->stats().in_flight_blocks, 0);
  EXPECT_EQ(pool->stats().queued_blocks, 0);
}

TEST_F(WorkerPoolTest, ABatchGoesToOneWorkerInOneMessageAndSpillsPastItsBound) {
  InProcessWorker a, b;
  WorkerPool::Options options = Options();
  options.max_in_flight_per_worker = 6;
  Results results;
  auto pool = StartPool(options, results, {a.address(), b.address()});
  ASSERT_TRUE(AllReady(*pool, 2));
  std::vector<BlockJob> jobs;
  std::vector<BlockJob> batch;
  for (uint64_t s = 1; s <= 4; ++s) batch.push_back(MakeJob(ContextSize(), s, 10 + s, 4));
  jobs.insert(jobs.end(), batch.begin(), batch.end());
  pool->DispatchBatch(std::move(batch), 1);
  ASSERT_TRUE(results.WaitFor(4));
  // All four at one worker (not spread 2 + 2 by least-outstanding).
  EXPECT_EQ(std::max(a.blocks_ok(), b.blocks_ok()), 4);
  EXPECT_EQ(std::min(a.blocks_ok(), b.blocks_ok()), 0);

  // Ten blocks, six at most per worker: six go one way, four the other.
  batch.clear();
  for (uint64_t s = 5; s <= 14; ++s) batch.push_back(MakeJob(ContextSize(), s, 10 + s, 4));
  jobs.insert(jobs.end(), batch.begin(), batch.end());
  pool->DispatchBatch(std::move(batch), 1);
  ASSERT_TRUE(results.WaitFor(jobs.size()));
  EXPECT_EQ(a.blocks_ok() + b.blocks_ok(), 14);
  EXPECT_GE(std::min(a.blocks_ok(), b.blocks_ok()), 4);

  // In two parts: three and three, each part on its own worker.
  const int a_before = a.blocks_ok();
  batch.clear();
  for (uint64_t s = 15; s <= 20; ++s) batch.push_back(MakeJob(ContextSize(), s, 10 + s, 4));
  jobs.insert(jobs.end(), batch.begin(), batch.end());
  pool->DispatchBatch(std::move(batch), 2);
  ASSERT_TRUE(results.WaitFor(jobs.size()));
  EXPECT_EQ(a.blocks_ok() - a_before, 3);
  EXPECT_EQ(a.blocks_ok() + b.blocks_ok(), 20);
  for (const BlockJob& job : jobs) {
    const BlockResult& got = results.by_session.at(job.session_id);
    ASSERT_TRUE(got.status.ok()) << got.status;
    EXPECT_EQ(got.tokens, DecodeAlone(ModelDir(kModel), job).tokens) << job.session_id;
  }
}

TEST_F(WorkerPoolTest, ABatchTravelsAsOneMessage) {
  SilentWorker silent(info_);
  WorkerPool::Options options = Options();
  options.max_in_flight_per_worker = 8;
  Results results;
  auto pool = StartPool(options, results, {silent.address()});
  ASSERT_TRUE(AllReady(*pool, 1));
  std::vector<BlockJob> batch;
  for (uint64_t s = 1; s <= 5; ++s) batch.push_back(MakeJob(ContextSize(), s, s));
  pool->DispatchBatch(std::move(batch), 1);
  pool->Dispatch(MakeJob(ContextSize(), 6, 6));  // alone: the single-block message
  ASSERT_TRUE(Eventually([&] { return silent.received() == 6; }));
  EXPECT_EQ(silent.batches(), 1);
  EXPECT_EQ(pool->stats().in_flight_blocks, 6);
}

TEST_F(WorkerPoolTest, BlocksOfABrokenStreamAreRetriedOnAnotherWorker) {
  SilentWorker silent(info_);
  InProcessWorker good;
  WorkerPool::Options options = Options();
  options.max_in_flight_per_worker = 100;
  Results results;
  auto pool = StartPool(options, results, {silent.address()});
  ASSERT_TRUE(AllReady(*pool, 1));
  std::vector<BlockJob> jobs;
  for (uint64_t s = 1; s <= 6; ++s) {
    jobs.push_back(MakeJob(ContextSize(), s, 7 * s));
    pool->Dispatch(jobs.back());
  }
  ASSERT_TRUE(Eventually([&] { return silent.received() == 6; }));
  pool->UpdateWorkers({silent.address(), good.address()});
  ASSERT_TRUE(AllReady(*pool, 2));
  silent.Stop();  // the stream breaks with 6 blocks in flight
  ASSERT_TRUE(results.WaitFor(jobs.size()));
  for (const BlockJob& job : jobs) {
    const BlockResult& got = results.by_session.at(job.session_id);
    ASSERT_TRUE(got.status.ok()) << got.status;
    EXPECT_EQ(got.tokens, DecodeAlone(ModelDir(kModel), job).tokens);
  }
  EXPECT_EQ(good.blocks_ok(), 6);
  EXPECT_GE(metrics_.block_retries.Value(), 6);
}

TEST_F(WorkerPoolTest, ALateBlockIsRetriedAndARemovedWorkerIsDrainedThenForgotten) {
  SilentWorker silent(info_);
  InProcessWorker good;
  WorkerPool::Options options = Options();
  options.block_timeout_s = 0.3;
  Results results;
  auto pool = StartPool(options, results, {silent.address()});
  ASSERT_TRUE(AllReady(*pool, 1));
  const BlockJob job = MakeJob(ContextSize(), 1, 3);
  pool->Dispatch(job);
  ASSERT_TRUE(Eventually([&] { return silent.received() == 1; }));
  // Replace the silent worker: it gets nothing new, its block times out and
  // goes to the good worker, then the silent one is disconnected.
  pool->UpdateWorkers({good.address()});
  ASSERT_TRUE(results.WaitFor(1));
  EXPECT_TRUE(results.by_session.at(1).status.ok());
  EXPECT_EQ(results.by_session.at(1).tokens, DecodeAlone(ModelDir(kModel), job).tokens);
  ASSERT_TRUE(Eventually([&] {
    auto workers = pool->workers();
    return workers.size() == 1 && workers[0].address == good.address();
  }));
}

TEST_F(WorkerPoolTest, WithoutAnyWorkerABlockFailsWithUnavailable) {
  WorkerPool::Options options = Options();
  options.no_worker_timeout_s = 0.3;
  Results results;
  auto pool = StartPool(options, results, {"127.0.0.1:1"});  // nothing listens there
  pool->Dispatch(MakeJob(ContextSize(), 1, 1));
  ASSERT_TRUE(results.WaitFor(1));
  const absl::Status& status = results.by_session.at(1).status;
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("no token worker could take the block"));
}

TEST_F(WorkerPoolTest, AWorkerServingAnotherModelIsNotUsed) {
  InProcessWorker worker;
  WorkerPool::Options options = Options();
  options.model.set_context_size(info_.context_size() + 1);
  options.no_worker_timeout_s = 0.3;
  Results results;
  auto pool = StartPool(options, results, {worker.address()});
  ASSERT_TRUE(AllReady(*pool, 1));
  EXPECT_FALSE(pool->workers()[0].accepting);
  pool->Dispatch(MakeJob(ContextSize(), 1, 1));
  ASSERT_TRUE(results.WaitFor(1));
  EXPECT_EQ(results.by_session.at(1).status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(worker.blocks_ok(), 0);
}

TEST_F(WorkerPoolTest, CancelledBlocksGetNoResultAndFreeTheirSlot) {
  SilentWorker silent(info_);
  WorkerPool::Options options = Options();
  options.max_in_flight_per_worker = 1;
  Results results;
  auto pool = StartPool(options, results, {silent.address()});
  ASSERT_TRUE(AllReady(*pool, 1));
  pool->Dispatch(MakeJob(ContextSize(), 1, 1));
  pool->Dispatch(MakeJob(ContextSize(), 2, 2));  // waits: the bound is 1
  ASSERT_TRUE(Eventually([&] { return silent.received() == 1; }));
  EXPECT_EQ(pool->stats().queued_blocks, 1);
  pool->CancelSession(1);  // frees the slot: block 2 goes out
  ASSERT_TRUE(Eventually([&] { return silent.received() == 2; }));
  pool->CancelSession(2);
  EXPECT_EQ(pool->stats().in_flight_blocks, 0);
  EXPECT_EQ(pool->workers()[0].outstanding, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(results.size(), 0u);
}

}  // namespace
}  // namespace blockserve::services
