#include "services/context/worker_stream.h"

#include <utility>

namespace blockserve::services {

WorkerStream* WorkerStream::Start(v1::TokenWorker::StubInterface* stub, Listener* listener,
                                  std::string address, uint64_t generation) {
  auto* stream = new WorkerStream(listener, std::move(address), generation);
  stub->async()->DecodeBlocks(&stream->context_, stream);
  stream->AddHold();
  stream->StartRead(&stream->reply_);
  stream->StartCall();
  return stream;
}

WorkerStream::WorkerStream(Listener* listener, std::string address, uint64_t generation)
    : listener_(listener), address_(std::move(address)), generation_(generation) {}

bool WorkerStream::Send(v1::WorkerRequest request) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_ || close_writes_) return false;
  queue_.push_back(std::move(request));
  PumpLocked();
  return true;
}

void WorkerStream::CloseWrites() {
  std::lock_guard<std::mutex> lock(mutex_);
  close_writes_ = true;
  PumpLocked();
}

void WorkerStream::PumpLocked() {
  // Reactions never run inline from these calls (gRPC schedules them), so
  // starting operations under our lock cannot deadlock.
  if (!write_in_flight_ && !closed_) {
    if (!queue_.empty()) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      write_in_flight_ = true;
      StartWrite(&current_);
    } else if (close_writes_ && !writes_done_started_) {
      writes_done_started_ = true;
      StartWritesDone();
    }
  }
  if (closed_ && reads_done_ && !write_in_flight_ && !hold_released_) {
    hold_released_ = true;
    queue_.clear();
    RemoveHold();
  }
}

void WorkerStream::OnReadDone(bool ok) {
  if (ok) {
    listener_->OnWorkerReply(address_, generation_, reply_);
    StartRead(&reply_);
    return;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  reads_done_ = true;
  closed_ = true;
  PumpLocked();
}

void WorkerStream::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mutex_);
  write_in_flight_ = false;
  if (!ok) closed_ = true;  // the stream broke; the read side will end too
  PumpLocked();
}

void WorkerStream::OnDone(const grpc::Status& status) {
  listener_->OnStreamDone(address_, generation_, status);
  delete this;
}

}  // namespace blockserve::services
