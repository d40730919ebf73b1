// HostStaging: pinned host buffers through which CopyToDevice passes, so that
// the caller's source may be reused as soon as the call returns while the
// DMA itself stays asynchronous.
//
// A ring of kBlocks pinned blocks of kBlockBytes. Copies are packed into the
// current block (64-byte aligned) and a cudaMemcpyAsync from there is
// enqueued; a copy larger than a block goes in block-sized chunks. When the
// current block is full an event is recorded behind its last copy and the
// next block becomes current, after waiting for that block's own event (its
// previous copies must have left it). Small per-step uploads (token ids,
// page tables) thus cost a memcpy and never wait; a large upload (weights)
// streams through the ring with host copies and DMA overlapped.
//
// Used by one thread at a time (the backend's); not thread-safe.
#ifndef BLOCKSERVE_KERNELS_CUDA_HOST_STAGING_H_
#define BLOCKSERVE_KERNELS_CUDA_HOST_STAGING_H_

#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <memory>

#include "absl/status/statusor.h"
#include "kernels/cuda/cuda_error.h"

namespace blockserve::cuda {

class HostStaging {
 public:
  static constexpr int kBlocks = 4;
  static constexpr size_t kBlockBytes = size_t{4} << 20;

  static absl::StatusOr<std::unique_ptr<HostStaging>> Create(cudaStream_t stream,
                                                             ErrorState* errors);
  // Waits for the copies in flight, then frees the pinned memory.
  ~HostStaging();
  HostStaging(const HostStaging&) = delete;
  HostStaging& operator=(const HostStaging&) = delete;

  // Copies `bytes` from host `src` to device `dst` on the stream; `src` has
  // been read when this returns.
  void CopyToDevice(const void* src, void* dst, size_t bytes);

 private:
  HostStaging(cudaStream_t stream, ErrorState* errors) : stream_(stream), errors_(errors) {}
  // Retires the current block and makes the next one current.
  void NextBlock();

  cudaStream_t stream_;
  ErrorState* errors_;
  std::array<char*, kBlocks> blocks_{};
  std::array<cudaEvent_t, kBlocks> events_{};
  int current_ = 0;
  size_t used_ = 0;  // bytes used in the current block
};

}  // namespace blockserve::cuda

#endif  // BLOCKSERVE_KERNELS_CUDA_HOST_STAGING_H_
