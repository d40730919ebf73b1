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

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  for (int i = 1; i < std::max(1, num_threads); ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
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

void ThreadPool::RunChunks() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (next_chunk_ < num_chunks_) {
    const int64_t chunk = next_chunk_++;
    const auto* job = job_;
    const int64_t begin = chunk * chunk_size_;
    const int64_t end = std::min(job_size_, begin + chunk_size_);
    lock.unlock();
    (*job)(begin, end);
    lock.lock();
    if (++chunks_done_ == num_chunks_) {
      job_done_.store(true, std::memory_order_release);
      work_done_.notify_all();
    }
  }
}

void ThreadPool::WorkerLoop(int index) {
  (void)index;
  uint64_t seen_generation = 0;
  while (true) {
    // The next job usually comes within microseconds: spin before sleeping.
    SpinFor(kSpinMicros, [&] {
      return published_generation_.load(std::memory_order_acquire) != seen_generation ||
             stopping_flag_.load(std::memory_order_acquire);
    });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen_generation; });
      if (stopping_) return;
      seen_generation = generation_;
    }
    RunChunks();
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
  int64_t chunk =
      std::max(min_chunk, (n + threads * kChunksPerThread - 1) / (threads * kChunksPerThread));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_size_ = n;
    chunk_size_ = chunk;
    num_chunks_ = (n + chunk - 1) / chunk;
    next_chunk_ = 0;
    chunks_done_ = 0;
    ++generation_;
    job_done_.store(false, std::memory_order_relaxed);
    published_generation_.store(generation_, std::memory_order_release);
  }
  work_ready_.notify_all();
  RunChunks();
  // A worker may still run the last chunk: spin briefly, then sleep.
  SpinFor(kSpinMicros, [&] { return job_done_.load(std::memory_order_acquire); });
  std::unique_lock<std::mutex> lock(mutex_);
  work_done_.wait(lock, [&] { return chunks_done_ == num_chunks_; });
  job_ = nullptr;
}

}  // namespace blockserve
