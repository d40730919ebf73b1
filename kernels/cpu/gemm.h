// CPU GEMM kernels for MatMul with 16-bit weights: y = act(x w^T + b) (+ y).
//
// Weights are repacked once at load time into panels of 16 output columns
// with consecutive k values paired (the operand layout of AVX-512 BF16's
// vdpbf16ps), so the inner loop is one 64-byte load per 16 columns and one
// broadcast per row. Activations (F32) are rounded to BF16 per call. Each
// output element is reduced over k in the same order whatever the number of
// rows, so a row's result does not depend on the batch it is in.
//
// Kernels: AVX-512 BF16 (vdpbf16ps), AVX2/FMA (BF16 widened to F32), and a
// scalar fallback, chosen at run time. Thread-safe; work is split over the
// given ThreadPool by column panels.
#ifndef BLOCKSERVE_KERNELS_CPU_GEMM_H_
#define BLOCKSERVE_KERNELS_CPU_GEMM_H_

#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

namespace blockserve::cpu {

inline constexpr int64_t kPanelWidth = 16;

// Number of uint16 values of a packed [n, k] weight.
int64_t PackedBf16Elements(int64_t n, int64_t k);

// Packs a row-major [n, k] weight of `dtype` (F32, F16 or BF16, converted
// to BF16) into `packed` (PackedBf16Elements(n, k) values).
void PackBf16Weight(DType dtype, const void* src, int64_t n, int64_t k, uint16_t* packed);

struct GemmEpilogue {
  const float* bias = nullptr;  // [n] or null
  Activation activation = Activation::kNone;
  bool accumulate = false;      // y += result
};

// y[m, n] (row stride n) = epilogue(x[m, k] * w^T) with w packed by PackBf16Weight.
void GemmBf16(ThreadPool& pool, const float* x, int64_t m, int64_t k, const uint16_t* packed,
              int64_t n, const GemmEpilogue& epilogue, float* y);

// Which kernel GemmBf16 runs on this machine: "avx512-bf16", "avx2", "scalar".
const char* GemmBf16KernelName();

}  // namespace blockserve::cpu

#endif  // BLOCKSERVE_KERNELS_CPU_GEMM_H_
