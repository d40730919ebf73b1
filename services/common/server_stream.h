// ServerStream<Response>: a server-streaming gRPC call (callback API) that
// any thread can write to.
//
// The handler creates one with Create(), returns reactor() to gRPC and hands
// the shared ServerStream to the engine, whose threads call Write() and
// Finish() (a WriteQueue: one write in flight, the next in OnWriteDone).
// When the client cancels (or its deadline passes) the queue is dropped, the
// call is finished and hooks.on_cancel runs on a gRPC thread: it must only
// post to the engine, never block. The reactor deletes itself in OnDone
// (then hooks.on_done runs and both hooks are destroyed, so they may hold
// the stream's owner); afterwards Write/Finish are no-ops, and the
// ServerStream lives as long as someone holds it.
//
// Thread-safe.
#ifndef BLOCKSERVE_SERVICES_COMMON_SERVER_STREAM_H_
#define BLOCKSERVE_SERVICES_COMMON_SERVER_STREAM_H_

#include <functional>
#include <memory>
#include <utility>

#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"
#include "services/common/write_queue.h"

namespace blockserve::services {

template <typename Response>
class ServerStream {
 public:
  struct Hooks {
    std::function<void()> on_cancel;  // the client went away: stop the work
    std::function<void()> on_done;    // the call is over (its last event)
  };

  static std::shared_ptr<ServerStream> Create(Hooks hooks) {
    std::shared_ptr<ServerStream> stream(new ServerStream(std::move(hooks)));
    stream->reactor_ = new Reactor(stream);
    stream->writes_ = std::make_unique<Queue>(stream->reactor_);
    return stream;
  }

  // What the handler returns to gRPC.
  grpc::ServerWriteReactor<Response>* reactor() { return reactor_; }

  void Write(Response response) { writes_->Write(std::move(response)); }
  void Finish(grpc::Status status) { writes_->Finish(std::move(status)); }
  bool cancelled() const { return writes_->cancelled(); }

 private:
  using Queue = WriteQueue<grpc::ServerWriteReactor<Response>, Response>;

  class Reactor final : public grpc::ServerWriteReactor<Response> {
   public:
    explicit Reactor(std::shared_ptr<ServerStream> stream) : stream_(std::move(stream)) {}
    void OnWriteDone(bool ok) override { stream_->writes_->OnWriteDone(ok); }
    void OnCancel() override {
      stream_->writes_->OnCancel();
      if (stream_->hooks_.on_cancel) stream_->hooks_.on_cancel();
    }
    void OnDone() override {
      // Take the hooks out, so that whatever they hold is released now
      // (a hook may hold the owner of this stream).
      Hooks hooks = std::move(stream_->hooks_);
      stream_->writes_->OnDone();
      if (hooks.on_done) hooks.on_done();
      delete this;  // releases the stream
    }

   private:
    std::shared_ptr<ServerStream> stream_;
  };

  explicit ServerStream(Hooks hooks) : hooks_(std::move(hooks)) {}

  Hooks hooks_;                 // moved out in OnDone (the last reaction)
  Reactor* reactor_ = nullptr;  // owned by gRPC until OnDone
  std::unique_ptr<Queue> writes_;
};

}  // namespace blockserve::services

#endif  // BLOCKSERVE_SERVICES_COMMON_SERVER_STREAM_H_
