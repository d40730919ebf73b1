#include "kernels/cuda/host_staging.h"

#include <algorithm>
#include <cstring>

#include "shared/common/status_macros.h"

namespace blockserve::cuda {

absl::StatusOr<std::unique_ptr<HostStaging>> HostStaging::Create(cudaStream_t stream,
                                                                 ErrorState* errors) {
  std::unique_ptr<HostStaging> staging(new HostStaging(stream, errors));
  for (int i = 0; i < kBlocks; ++i) {
    void* block = nullptr;
    RETURN_IF_ERROR(CudaStatus(cudaHostAlloc(&block, kBlockBytes, cudaHostAllocDefault),
                               "cudaHostAlloc", __FILE__, __LINE__));
    staging->blocks_[i] = static_cast<char*>(block);
    RETURN_IF_ERROR(
        CudaStatus(cudaEventCreateWithFlags(&staging->events_[i], cudaEventDisableTiming),
                   "cudaEventCreateWithFlags", __FILE__, __LINE__));
  }
  return staging;
}

HostStaging::~HostStaging() {
  // Every copy reading a block is on the stream: wait for all of them.
  BS_CUDA_OK(*errors_, cudaStreamSynchronize(stream_));
  for (int i = 0; i < kBlocks; ++i) {
    if (events_[i] != nullptr) BS_CUDA_OK(*errors_, cudaEventDestroy(events_[i]));
    if (blocks_[i] != nullptr) BS_CUDA_OK(*errors_, cudaFreeHost(blocks_[i]));
  }
}

void HostStaging::NextBlock() {
  BS_CUDA_OK(*errors_, cudaEventRecord(events_[current_], stream_));
  current_ = (current_ + 1) % kBlocks;
  // Never recorded yet: returns at once.
  BS_CUDA_OK(*errors_, cudaEventSynchronize(events_[current_]));
  used_ = 0;
}

void HostStaging::CopyToDevice(const void* src, void* dst, size_t bytes) {
  const char* in = static_cast<const char*>(src);
  char* out = static_cast<char*>(dst);
  while (bytes > 0) {
    const size_t chunk = std::min(bytes, kBlockBytes);
    if (chunk > kBlockBytes - used_) NextBlock();
    char* staged = blocks_[current_] + used_;
    std::memcpy(staged, in, chunk);
    BS_CUDA_OK(*errors_, cudaMemcpyAsync(out, staged, chunk, cudaMemcpyHostToDevice, stream_));
    used_ = std::min(kBlockBytes, used_ + ((chunk + 63) & ~size_t{63}));
    in += chunk;
    out += chunk;
    bytes -= chunk;
  }
}

}  // namespace blockserve::cuda
