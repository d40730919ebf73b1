// ThreadPool: a fixed set of worker threads for data-parallel CPU kernels.
//
// ParallelFor(n, fn) splits [0, n) into contiguous chunks, runs them on the
// workers and the calling thread, and returns when all are done. One
// ParallelFor runs at a time per pool (calls from several threads are
// serialized); the pool is owned by its CpuBackend. Kernels must not call
// ParallelFor from inside a ParallelFor body.
#ifndef BLOCKSERVE_KERNELS_CPU_THREAD_POOL_H_
#define BLOCKSERVE_KERNELS_CPU_THREAD_POOL_H_

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
};

}  // namespace blockserve

#endif  // BLOCKSERVE_KERNELS_CPU_THREAD_POOL_H_
