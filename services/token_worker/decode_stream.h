// DecodeStream: the worker's side of one context-service connection, a
// bidirectional stream (gRPC callback API) that multiplexes the blocks of
// many sessions.
//
// Every DecodeBlock read is posted to the WorkerEngine (never decoded in the
// reaction); the engine's replies (finished blocks plus the worker's load;
// the first one also carries the model info) are written back through a
// WriteQueue, one write in flight. When the peer half-closes, cancels or the
// connection breaks, the connection's blocks are dropped. Deletes itself in
// OnDone.
//
// Thread-safe as gRPC reactors are: reactions arrive one at a time per
// operation; the engine writes from its own thread through the queue.
#ifndef BLOCKSERVE_SERVICES_TOKEN_WORKER_DECODE_STREAM_H_
#define BLOCKSERVE_SERVICES_TOKEN_WORKER_DECODE_STREAM_H_

#include <cstdint>
#include <memory>

#include "blockserve/v1/token_worker.grpc.pb.h"
#include "services/common/write_queue.h"
#include "services/token_worker/worker_engine.h"

namespace blockserve::services {

class DecodeStream final : public grpc::ServerBidiReactor<v1::WorkerRequest, v1::WorkerReply> {
 public:
  // Starts reading at once. `engine` must outlive the call.
  DecodeStream(WorkerEngine* engine, const v1::ModelInfo& model);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  using Writes =
      WriteQueue<grpc::ServerBidiReactor<v1::WorkerRequest, v1::WorkerReply>, v1::WorkerReply>;

  WorkerEngine* const engine_;
  const std::shared_ptr<Writes> writes_;
  uint64_t connection_ = 0;
  v1::WorkerRequest request_;
};

// A bidirectional call refused at once with `status` (draining, not ready).
class RejectedBidiStream final
    : public grpc::ServerBidiReactor<v1::WorkerRequest, v1::WorkerReply> {
 public:
  explicit RejectedBidiStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_TOKEN_WORKER_DECODE_STREAM_H_
