// ThreadPool: a fixed set of worker threads for data-parallel CPU kernels.
//
// ParallelFor(n, fn) splits [0, n) into contiguous chunks, runs them on the
// workers and the calling thread, and returns when all are done. One
// ParallelFor runs at a time per pool (calls from several threads are
// serialized); the pool is owned by its CpuBackend. Kernels must not call
// ParallelFor from inside a ParallelFor body.
//
// A forward pass issues dozens of ParallelFor calls a few microseconds
// apart (at batch 1 each is tens of microseconds of work), so waking a
// sleeping thread (a futex round trip, 10-50 us) would cost as much as the
// work. Idle workers and a caller waiting for the last chunk therefore spin
// (with `pause`) for up to kSpinMicros before blocking on the condition
// variable.
//
// Chunks are claimed lock-free: one atomic word holds the job's generation
// and the next chunk index, so a worker still holding an earlier job's
// generation can never claim a chunk of a later one. The mutex is taken
// once per job and thread (to read the job), not once per chunk.
#ifndef BLOCKSERVE_KERNELS_CPU_THREAD_POOL_H_
#define BLOCKSERVE_KERNELS_CPU_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace blockserve {

class ThreadPool {
 public:
  // `num_threads` counts the calling thread: 1 means no workers.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n). `min_chunk`
  // bounds how finely the range is split (small ranges run inline).
  void ParallelFor(int64_t n, int64_t min_chunk,
                   const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  static constexpr int64_t kSpinMicros = 200;

  // One ParallelFor call, as a thread read it under mutex_.
  struct Job {
    const std::function<void(int64_t, int64_t)>* fn = nullptr;
    int64_t size = 0;
    int64_t chunk_size = 0;
    int64_t num_chunks = 0;
    uint64_t generation = 0;
  };

  void WorkerLoop();
  // Claims and runs chunks of `job` until none is left (or a later job has
  // replaced it), then counts them done.
  void RunChunks(const Job& job);

  std::mutex call_mutex_;  // serializes ParallelFor calls
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::vector<std::thread> workers_;
  Job job_;                  // guarded by mutex_
  uint64_t generation_ = 0;  // guarded by mutex_
  bool stopping_ = false;    // guarded by mutex_
  // The job's generation (high 32 bits) and its next chunk to claim (low 32).
  std::atomic<uint64_t> claim_{0};
  // Chunks of the current job that have run; reset (under mutex_) per job.
  std::atomic<int64_t> chunks_done_{0};
  // Lock-free mirrors of generation_ and stopping_, read while spinning.
  std::atomic<uint64_t> published_generation_{0};
  std::atomic<bool> stopping_flag_{false};
};

}  // namespace blockserve

#endif  // BLOCKSERVE_KERNELS_CPU_THREAD_POOL_H_
