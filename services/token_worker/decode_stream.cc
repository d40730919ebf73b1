#include "services/token_worker/decode_stream.h"

#include <utility>
#include <vector>

#include "services/common/proto_convert.h"

namespace blockserve::services {
namespace {

void SetLoad(const WorkerEngine::Load& load, v1::WorkerLoad* out) {
  out->set_queued_blocks(load.queued_blocks);
  out->set_active_blocks(load.active_blocks);
  out->set_last_batch(load.last_batch);
  out->set_max_active_blocks(load.max_active_blocks);
  out->set_draining(load.draining);
}

}  // namespace

DecodeStream::DecodeStream(WorkerEngine* engine, const v1::ModelInfo& model)
    : engine_(engine), writes_(std::make_shared<Writes>(this)) {
  connection_ = engine_->Connect(
      [writes = writes_, model, first = true](std::vector<BlockResult> results,
                                              const WorkerEngine::Load& load) mutable {
        v1::WorkerReply reply;
        for (const BlockResult& result : results) ToProto(result, reply.add_results());
        SetLoad(load, reply.mutable_load());
        if (first) *reply.mutable_info()->mutable_model() = model;
        first = false;
        writes->Write(std::move(reply));
      });
  StartRead(&request_);
}

void DecodeStream::OnReadDone(bool ok) {
  if (!ok) {  // the peer half-closed or the stream broke
    engine_->Disconnect(connection_);
    writes_->Finish(grpc::Status::OK);
    return;
  }
  if (request_.has_block()) {
    engine_->Submit(connection_, FromProto(request_.block()));
  } else if (request_.has_blocks()) {
    std::vector<BlockJob> jobs;
    jobs.reserve(request_.blocks().blocks_size());
    for (const v1::DecodeBlock& block : request_.blocks().blocks()) {
      jobs.push_back(FromProto(block));
    }
    engine_->SubmitBatch(connection_, std::move(jobs));
  } else if (request_.has_cancel()) {
    engine_->Cancel(connection_, request_.cancel().session_id());
  }
  StartRead(&request_);
}

void DecodeStream::OnWriteDone(bool ok) { writes_->OnWriteDone(ok); }

void DecodeStream::OnCancel() {
  engine_->Disconnect(connection_);
  writes_->OnCancel();
}

void DecodeStream::OnDone() {
  writes_->OnDone();
  engine_->Disconnect(connection_);
  delete this;
}

}  // namespace blockserve::services
