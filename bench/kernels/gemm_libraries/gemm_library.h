// One GEMM library behind a common face, for gemm_library_benchmark: the
// benchmark is built once per library (gemm_library_benchmark_<name>), each
// executable linking the harness and exactly one adapter (gemm_<name>.cc),
// because OpenBLAS and BLIS export the same BLAS symbols.
//
// The product is the one decoding runs: y[m, n] = x[m, k] * w^T with w
// [n, k] row-major (a PyTorch Linear weight), F32 activations and outputs,
// and F32 or BF16 weights. Each adapter gets the library's best setup for a
// weight that is reused across calls: packing or reordering the weight once
// in PrepareGemm is allowed (Blockserve's kernels do the same), converting
// the activations to the library's input type is part of every call.
//
// A GemmCall is used by one thread at a time; it owns its buffers and
// whatever the library allocated for it.
#ifndef BLOCKSERVE_BENCH_KERNELS_GEMM_LIBRARIES_GEMM_LIBRARY_H_
#define BLOCKSERVE_BENCH_KERNELS_GEMM_LIBRARIES_GEMM_LIBRARY_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "shared/tensor/dtype.h"

namespace blockserve {

struct GemmProblem {
  int64_t m = 0;
  int64_t k = 0;
  int64_t n = 0;
  bool bf16_weights = false;
  int threads = 1;
};

// The call owns its input and output (row-major F32, the problem's shapes),
// so that a timed Run is the product alone, as an engine calls it.
class GemmCall {
 public:
  virtual ~GemmCall() = default;
  virtual float* x() = 0;  // [m, k]
  virtual float* y() = 0;  // [m, n]
  // y = x * w^T.
  virtual void Run() = 0;
};

// The base of adapters that compute on plain host buffers.
class HostGemmCall : public GemmCall {
 public:
  explicit HostGemmCall(const GemmProblem& problem)
      : problem_(problem), x_(problem.m * problem.k), y_(problem.m * problem.n) {}
  float* x() override { return x_.data(); }
  float* y() override { return y_.data(); }

 protected:
  const GemmProblem problem_;
  std::vector<float> x_;
  std::vector<float> y_;
};

// `count` floats rounded to BF16 bit patterns (to nearest even).
inline std::vector<uint16_t> ToBf16(const float* values, size_t count) {
  std::vector<uint16_t> bits(count);
  ConvertFromF32(DType::kBF16, values, bits.data(), count);
  return bits;
}

// The library's name and version, as the benchmark reports them.
const char* GemmLibraryName();

// Prepares the product for the weight w ([n, k] row-major, F32; with
// bf16_weights the adapter rounds it to BF16 the way Blockserve does, to
// nearest even). kUnimplemented when the library has no such product (for
// example BF16 weights in a BLAS without a BF16 GEMM).
absl::StatusOr<std::unique_ptr<GemmCall>> PrepareGemm(const GemmProblem& problem, const float* w);

}  // namespace blockserve

#endif  // BLOCKSERVE_BENCH_KERNELS_GEMM_LIBRARIES_GEMM_LIBRARY_H_
