#include "kernels/cpu/thread_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>

namespace blockserve {
namespace {

// Spins until `done()` or `micros` have passed; true when done() held.
template <typename Done>
bool SpinFor(int64_t micros, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  while (true) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      _mm_pause();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

// ThreadPool::claim_: a job's generation in the high 32 bits, the next chunk
// index in the low 32 (a job has at most threads x 16 chunks).
constexpr uint64_t kChunkIndexMask = 0xffffffffu;

uint64_t ClaimTag(uint64_t generation) { return (generation & kChunkIndexMask) << 32; }

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  for (int i = 1; i < std::max(1, num_threads); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    stopping_flag_.store(true, std::memory_order_release);
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::RunChunks(const Job& job) {
  const uint64_t tag = ClaimTag(job.generation);
  int64_t ran = 0;
  uint64_t claim = claim_.load(std::memory_order_relaxed);
  while ((claim & ~kChunkIndexMask) == tag &&
         static_cast<int64_t>(claim & kChunkIndexMask) < job.num_chunks) {
    if (!claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_relaxed)) continue;
    const int64_t begin = static_cast<int64_t>(claim & kChunkIndexMask) * job.chunk_size;
    (*job.fn)(begin, std::min(job.size, begin + job.chunk_size));
    ++ran;
    claim = claim_.load(std::memory_order_relaxed);
  }
  // Release: the chunks' writes are visible to whoever sees the count.
  if (ran > 0 && chunks_done_.fetch_add(ran, std::memory_order_acq_rel) + ran == job.num_chunks) {
    // Taking the mutex orders this against a caller between its last check
    // of the count and its wait.
    { std::lock_guard<std::mutex> lock(mutex_); }
    work_done_.notify_all();
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen_generation = 0;
  while (true) {
    // The next job usually comes within microseconds: spin before sleeping.
    SpinFor(kSpinMicros, [&] {
      return published_generation_.load(std::memory_order_acquire) != seen_generation ||
             stopping_flag_.load(std::memory_order_acquire);
    });
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen_generation; });
      if (stopping_) return;
      seen_generation = generation_;
      job = job_;
    }
    RunChunks(job);
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t min_chunk,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t threads = num_threads();
  min_chunk = std::max<int64_t>(1, min_chunk);
  if (threads == 1 || n <= min_chunk) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mutex_);
  // Many chunks per thread (claimed in turn) balance uneven work (causal
  // attention rows, a thread preempted by another process): the last chunk
  // of a loop is what the other threads wait for.
  constexpr int64_t kChunksPerThread = 16;
  Job job;
  job.fn = &fn;
  job.size = n;
  job.chunk_size =
      std::max(min_chunk, (n + threads * kChunksPerThread - 1) / (threads * kChunksPerThread));
  job.num_chunks = (n + job.chunk_size - 1) / job.chunk_size;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job.generation = ++generation_;
    job_ = job;
    chunks_done_.store(0, std::memory_order_relaxed);
    claim_.store(ClaimTag(job.generation), std::memory_order_relaxed);
    published_generation_.store(job.generation, std::memory_order_release);
  }
  work_ready_.notify_all();
  RunChunks(job);
  // A worker may still run the last chunk: spin briefly, then sleep.
  const auto all_done = [&] {
    return chunks_done_.load(std::memory_order_acquire) == job.num_chunks;
  };
  if (SpinFor(kSpinMicros, all_done)) return;
  std::unique_lock<std::mutex> lock(mutex_);
  work_done_.wait(lock, all_done);
}

}  // namespace blockserve
