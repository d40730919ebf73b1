// ThreadPool: a fixed set of threads running posted tasks in FIFO order.
// Services use it for request work that must not run inside a gRPC
// reaction (tokenization, starting upstream calls).
//
// Thread-safe. The destructor finishes the queued tasks and joins.
#ifndef BLOCKSERVE_SERVICES_COMMON_THREAD_POOL_H_
#define BLOCKSERVE_SERVICES_COMMON_THREAD_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace blockserve::services {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Post(std::function<void()> task);

 private:
  void Run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_COMMON_THREAD_POOL_H_
