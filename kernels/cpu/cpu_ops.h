// The CPU reference kernels, one function per Backend op (kernels/backend.h
// documents each op's contract). Each lives in its own .cc file. All take the
// backend's ThreadPool and are synchronous; they CHECK-fail on arguments that
// break the contract.
#ifndef BLOCKSERVE_KERNELS_CPU_CPU_OPS_H_
#define BLOCKSERVE_KERNELS_CPU_CPU_OPS_H_

#include "absl/types/span.h"
#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

namespace blockserve::cpu {

void MatMul(ThreadPool& pool, const Tensor& x, const Tensor& w, const Tensor& bias,
            Activation act, bool accumulate, const Tensor& y);
void LayerNorm(ThreadPool& pool, const Tensor& x, const Tensor& gamma, const Tensor& beta,
               float eps, const Tensor& y);
void CopyRows(ThreadPool& pool, const Tensor& src, const Tensor& src_rows, const Tensor& dst,
              const Tensor& dst_rows);
void Rotary(ThreadPool& pool, const Tensor& qkv, const Tensor& positions, int num_heads,
            int head_dim, int rotary_dims, float base);
void Attention(ThreadPool& pool, const Tensor& qkv, const KvCacheLayer& cache,
               const AttentionLayout& layout, int num_heads, int head_dim, const Tensor& out);
void LogSoftmax(ThreadPool& pool, const Tensor& logits, const Tensor& out);
void TargetLogProbs(ThreadPool& pool, const Tensor& logits, const Tensor& targets,
                    const Tensor& out);
void Sample(ThreadPool& pool, const Tensor& logits, absl::Span<const SamplingRow> rows,
            const Tensor& tokens, const Tensor& logprobs);

}  // namespace blockserve::cpu

#endif  // BLOCKSERVE_KERNELS_CPU_CPU_OPS_H_
