// CpuBackend: the reference Backend, running every op synchronously on host
// memory with a ThreadPool and its own GEMM kernels. Device memory is host
// memory, so copies are memcpy and Synchronize() has nothing to wait for.
// Used by one thread at a time, like every Backend.
#ifndef BLOCKSERVE_KERNELS_CPU_CPU_BACKEND_H_
#define BLOCKSERVE_KERNELS_CPU_CPU_BACKEND_H_

#include <memory>
#include <string>

#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

namespace blockserve {

class CpuBackend : public Backend {
 public:
  // `threads` <= 0 means every core of the machine.
  explicit CpuBackend(int threads);

  DeviceKind device() const override { return DeviceKind::kCpu; }
  std::string Describe() const override;
  Allocator& allocator() override { return HostAllocator(); }
  bool SupportsWeightType(DType dtype) const override;

  // Packs F32 and BF16 weights into the panels of kernels/cpu/gemm.h.
  absl::StatusOr<Tensor> PrepareMatMulWeight(const Tensor& w) override;

  void CopyToDevice(const void* src, const Tensor& dst) override;
  void CopyToHost(const Tensor& src, void* dst) override;
  absl::Status Synchronize() override { return absl::OkStatus(); }

  void MatMul(const Tensor& x, const Tensor& w, const Tensor& bias, Activation act, bool accumulate,
              const Tensor& y) override;
  void LayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                 const Tensor& y) override;
  void CopyRows(const Tensor& src, const Tensor& src_rows, const Tensor& dst,
                const Tensor& dst_rows) override;
  void Rotary(const Tensor& qkv, const Tensor& positions, int num_heads, int head_dim,
              int rotary_dims, float base) override;
  void Attention(const Tensor& qkv, const KvCacheLayer& cache, const AttentionLayout& layout,
                 int num_heads, int head_dim, const Tensor& out) override;
  void LogSoftmax(const Tensor& logits, const Tensor& out) override;
  void TargetLogProbs(const Tensor& logits, const Tensor& targets, const Tensor& out) override;
  void Sample(const Tensor& logits, absl::Span<const SamplingRow> rows, const Tensor& tokens,
              const Tensor& logprobs) override;

 private:
  int threads_;
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace blockserve

#endif  // BLOCKSERVE_KERNELS_CPU_CPU_BACKEND_H_
