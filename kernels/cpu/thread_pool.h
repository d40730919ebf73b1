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

  void WorkerLoop(int index);
  void RunChunks();

  std::mutex call_mutex_;  // serializes ParallelFor calls
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::vector<std::thread> workers_;
  // The current job, guarded by mutex_.
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_size_ = 0;
  int64_t chunk_size_ = 0;
  int64_t next_chunk_ = 0;  // next chunk index to claim
  int64_t num_chunks_ = 0;
  int64_t chunks_done_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  // Lock-free mirrors of generation_ and of "all chunks done" (set under
  // mutex_), read while spinning.
  std::atomic<uint64_t> published_generation_{0};
  std::atomic<bool> job_done_{true};
  std::atomic<bool> stopping_flag_{false};
};

}  // namespace blockserve

#endif  // BLOCKSERVE_KERNELS_CPU_THREAD_POOL_H_
