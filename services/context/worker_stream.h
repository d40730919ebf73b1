// WorkerStream: the context service's side of one long-lived bidirectional
// stream to a token worker (gRPC callback API). Carries DecodeBlock and
// CancelSession messages out and the worker's replies (decoded blocks and
// load) in, for many sessions at once.
//
// Send() queues a message (one write in flight, the next in OnWriteDone)
// and returns false once the stream is closing. Replies and the end of the
// stream go to the Listener (the WorkerPool) on gRPC threads. A hold keeps
// the call alive until reads have ended and no write is in flight, so a
// Send() racing with the stream's end never touches a finished call. The
// stream deletes itself after Listener::OnStreamDone.
//
// Thread-safe. The owner may call Send/CloseWrites/Cancel only until its
// OnStreamDone returns (the pool guarantees this with its own lock).
#ifndef BLOCKSERVE_SERVICES_CONTEXT_WORKER_STREAM_H_
#define BLOCKSERVE_SERVICES_CONTEXT_WORKER_STREAM_H_

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "blockserve/v1/token_worker.grpc.pb.h"

namespace blockserve::services {

class WorkerStream final : public grpc::ClientBidiReactor<v1::WorkerRequest, v1::WorkerReply> {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnWorkerReply(const std::string& address, uint64_t generation,
                               const v1::WorkerReply& reply) = 0;
    virtual void OnStreamDone(const std::string& address, uint64_t generation,
                              const grpc::Status& status) = 0;
  };

  // Starts the call at once.
  static WorkerStream* Start(v1::TokenWorker::StubInterface* stub, Listener* listener,
                             std::string address, uint64_t generation);

  bool Send(v1::WorkerRequest request);
  // Half-closes after the queued messages (the worker then ends the stream).
  void CloseWrites();
  // Ends the stream now (shutdown).
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  WorkerStream(Listener* listener, std::string address, uint64_t generation);
  // Starts the next write (or the half-close); releases the hold once the
  // stream is closed and idle. Called with mutex_ held.
  void PumpLocked();

  Listener* const listener_;
  const std::string address_;
  const uint64_t generation_;
  grpc::ClientContext context_;
  v1::WorkerReply reply_;

  std::mutex mutex_;
  std::deque<v1::WorkerRequest> queue_;  // guarded by mutex_
  v1::WorkerRequest current_;            // the message being written
  bool write_in_flight_ = false;         // guarded by mutex_
  bool close_writes_ = false;            // guarded by mutex_
  bool writes_done_started_ = false;     // guarded by mutex_
  bool closed_ = false;                  // guarded by mutex_: reads ended or a write failed
  bool reads_done_ = false;              // guarded by mutex_
  bool hold_released_ = false;           // guarded by mutex_
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_CONTEXT_WORKER_STREAM_H_
