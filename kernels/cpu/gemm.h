// CPU GEMM kernels for MatMul: y = act(x w^T + b) (+ y), x F32 [m, k],
// weights [n, k] repacked once at load time.
//
// Both weight types are packed in panels of 16 output columns, so the inner
// loop is one 64-byte load per 16 columns and one broadcast per row:
//  - F32: panel p holds, for each k, the 16 columns' values (FMA kernels);
//  - BF16: consecutive k values are paired (the operand layout of AVX-512
//    BF16's vdpbf16ps); activations are rounded to BF16 per call.
// Each output element is reduced over k in the same order whatever the
// number of rows, so a row's result does not depend on the batch it is in.
// Rows are processed in chunks that stay in cache; columns are split over
// the ThreadPool.
//
// Kernels: AVX-512 (F32 FMA, BF16 vdpbf16ps), AVX2/FMA, and a scalar
// fallback, chosen at run time. Thread-safe.
#ifndef BLOCKSERVE_KERNELS_CPU_GEMM_H_
#define BLOCKSERVE_KERNELS_CPU_GEMM_H_

#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

namespace blockserve::cpu {

inline constexpr int64_t kPanelWidth = 16;

// Number of uint16 values of a packed BF16 [n, k] weight.
int64_t PackedBf16Elements(int64_t n, int64_t k);
// Number of floats of a packed F32 [n, k] weight.
int64_t PackedF32Elements(int64_t n, int64_t k);

// Packs a row-major F32 [n, k] weight into `packed` (PackedF32Elements values).
void PackF32Weight(const float* src, int64_t n, int64_t k, float* packed);

// Packs a row-major [n, k] weight of `dtype` (F32, F16 or BF16, converted
// to BF16) into `packed` (PackedBf16Elements(n, k) values).
void PackBf16Weight(DType dtype, const void* src, int64_t n, int64_t k, uint16_t* packed);

struct GemmEpilogue {
  const float* bias = nullptr;  // [n] or null
  Activation activation = Activation::kNone;
  bool accumulate = false;  // y += result
};

// y[m, n] (row stride n) = epilogue(x[m, k] * w^T) with w packed by PackBf16Weight.
void GemmBf16(ThreadPool& pool, const float* x, int64_t m, int64_t k, const uint16_t* packed,
              int64_t n, const GemmEpilogue& epilogue, float* y);

// y = epilogue(x * w^T) with w packed by PackF32Weight.
void GemmF32(ThreadPool& pool, const float* x, int64_t m, int64_t k, const float* packed, int64_t n,
             const GemmEpilogue& epilogue, float* y);

// Which kernels run on this machine: "avx512-bf16" / "avx512", "avx2", "scalar".
const char* GemmBf16KernelName();
const char* GemmF32KernelName();

// Rows per cache-sized chunk of x for a depth of k values of `element_bytes`.
int64_t GemmRowChunk(int64_t k, int64_t element_bytes);

}  // namespace blockserve::cpu

#endif  // BLOCKSERVE_KERNELS_CPU_GEMM_H_
