// WriteQueue: the outgoing half of a server-side streaming call (callback
// API) that any thread may write to: messages are queued, one write is in
// flight at a time, the next starts in OnWriteDone, and Finish() takes
// effect once the queue is drained.
//
// The owning reactor forwards its OnWriteDone / OnCancel / OnDone events
// here. After a cancellation (or a failed write) the queue is dropped and
// the call is finished with CANCELLED as soon as no write is in flight;
// after OnDone every method is a no-op, so producers that outlive the call
// (engine threads holding a shared_ptr to the owner) are safe.
//
// Thread-safe. No gRPC operation is started while holding the lock.
// `Reactor` is a grpc::ServerWriteReactor<M> or grpc::ServerBidiReactor<R, M>.
#ifndef BLOCKSERVE_SERVICES_COMMON_WRITE_QUEUE_H_
#define BLOCKSERVE_SERVICES_COMMON_WRITE_QUEUE_H_

#include <deque>
#include <mutex>
#include <utility>

#include "grpcpp/support/status.h"

namespace blockserve::services {

template <typename Reactor, typename Message>
class WriteQueue {
 public:
  explicit WriteQueue(Reactor* reactor) : reactor_(reactor) {}

  // Queues a message; dropped once the call is finishing or cancelled.
  void Write(Message message) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (finish_requested_ || cancelled_ || reactor_ == nullptr) return;
    queue_.push_back(std::move(message));
    StartNextLocked(lock);
  }

  // Ends the call with `status` after the queued messages; later calls are
  // ignored.
  void Finish(grpc::Status status) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (finish_requested_ || reactor_ == nullptr) return;
    finish_requested_ = true;
    finish_status_ = std::move(status);
    StartNextLocked(lock);
  }

  void OnWriteDone(bool ok) {
    std::unique_lock<std::mutex> lock(mutex_);
    write_in_flight_ = false;
    if (!ok) {  // the stream broke: nothing more can be written
      cancelled_ = true;
      queue_.clear();
    }
    StartNextLocked(lock);
  }

  void OnCancel() {
    std::unique_lock<std::mutex> lock(mutex_);
    cancelled_ = true;
    queue_.clear();
    StartNextLocked(lock);
  }

  void OnDone() {
    std::lock_guard<std::mutex> lock(mutex_);
    reactor_ = nullptr;
    queue_.clear();
  }

  // True once the call is cancelled, finishing or done.
  bool closed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cancelled_ || finish_requested_ || reactor_ == nullptr;
  }
  bool cancelled() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cancelled_;
  }

 private:
  void StartNextLocked(std::unique_lock<std::mutex>& lock) {
    if (write_in_flight_ || finish_called_ || reactor_ == nullptr) return;
    Reactor* reactor = reactor_;
    if (!queue_.empty() && !cancelled_) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      write_in_flight_ = true;
      lock.unlock();
      reactor->StartWrite(&current_);
      return;
    }
    if (finish_requested_ || cancelled_) {
      finish_called_ = true;
      const grpc::Status status =
          cancelled_ ? grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled")
                     : finish_status_;
      lock.unlock();
      reactor->Finish(status);
    }
  }

  mutable std::mutex mutex_;
  Reactor* reactor_;               // guarded by mutex_; null after OnDone
  std::deque<Message> queue_;      // guarded by mutex_
  Message current_;                // the message being written
  bool write_in_flight_ = false;   // guarded by mutex_
  bool finish_requested_ = false;  // guarded by mutex_
  bool finish_called_ = false;     // guarded by mutex_
  bool cancelled_ = false;         // guarded by mutex_
  grpc::Status finish_status_;     // guarded by mutex_
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_COMMON_WRITE_QUEUE_H_
