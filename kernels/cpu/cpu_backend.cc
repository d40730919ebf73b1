#include "kernels/cpu/cpu_backend.h"

#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/gemm.h"
#include "shared/common/logging.h"

namespace blockserve {

CpuBackend::CpuBackend(int threads)
    : threads_(threads > 0 ? threads
                           : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
      pool_(std::make_unique<ThreadPool>(threads_)) {}

std::string CpuBackend::Describe() const { return absl::StrCat("cpu (", threads_, " threads)"); }

bool CpuBackend::SupportsWeightType(DType dtype) const {
  return dtype == DType::kF32 || dtype == DType::kBF16;
}

absl::StatusOr<Tensor> CpuBackend::PrepareMatMulWeight(const Tensor& w) {
  if (w.layout() != TensorLayout::kRowMajor) return w;
  const int64_t n = w.dim(0);
  const int64_t k = w.cols();
  const bool f32 = w.dtype() == DType::kF32;
  absl::StatusOr<Tensor> packed =
      f32 ? Tensor::Empty(HostAllocator(), DType::kF32, {cpu::PackedF32Elements(n, k)})
          : Tensor::Empty(HostAllocator(), DType::kBF16, {cpu::PackedBf16Elements(n, k)});
  if (!packed.ok()) return packed.status();
  if (f32) {
    cpu::PackF32Weight(w.data<float>(), n, k, packed->data<float>());
  } else {
    cpu::PackBf16Weight(w.dtype(), w.data(), n, k, packed->data<uint16_t>());
  }
  // The logical [N, K] shape stays for MatMul's checks; the storage is the packed size.
  return packed->ViewAs({n, k},
                        f32 ? TensorLayout::kPackedF32Panels : TensorLayout::kPackedBf16Panels);
}

void CpuBackend::CopyToDevice(const void* src, const Tensor& dst) {
  CHECK(dst.device() == DeviceKind::kCpu);
  std::memcpy(dst.data(), src, dst.nbytes());
}

void CpuBackend::CopyToHost(const Tensor& src, void* dst) {
  CHECK(src.device() == DeviceKind::kCpu);
  std::memcpy(dst, src.data(), src.nbytes());
}

void CpuBackend::MatMul(const Tensor& x, const Tensor& w, const Tensor& bias, Activation act,
                        bool accumulate, const Tensor& y) {
  cpu::MatMul(*pool_, x, w, bias, act, accumulate, y);
}

void CpuBackend::LayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                           const Tensor& y) {
  cpu::LayerNorm(*pool_, x, gamma, beta, eps, y);
}

void CpuBackend::CopyRows(const Tensor& src, const Tensor& src_rows, const Tensor& dst,
                          const Tensor& dst_rows) {
  cpu::CopyRows(*pool_, src, src_rows, dst, dst_rows);
}

void CpuBackend::Rotary(const Tensor& qkv, const Tensor& positions, int num_heads, int head_dim,
                        int rotary_dims, float base) {
  cpu::Rotary(*pool_, qkv, positions, num_heads, head_dim, rotary_dims, base);
}

void CpuBackend::Attention(const Tensor& qkv, const KvCacheLayer& cache,
                           const AttentionLayout& layout, int num_heads, int head_dim,
                           const Tensor& out) {
  cpu::Attention(*pool_, qkv, cache, layout, num_heads, head_dim, out);
}

void CpuBackend::LogSoftmax(const Tensor& logits, const Tensor& out) {
  cpu::LogSoftmax(*pool_, logits, out);
}

void CpuBackend::TargetLogProbs(const Tensor& logits, const Tensor& targets, const Tensor& out) {
  cpu::TargetLogProbs(*pool_, logits, targets, out);
}

void CpuBackend::Sample(const Tensor& logits, absl::Span<const SamplingRow> rows,
                        const Tensor& tokens, const Tensor& logprobs) {
  cpu::Sample(*pool_, logits, rows, tokens, logprobs);
}

}  // namespace blockserve
