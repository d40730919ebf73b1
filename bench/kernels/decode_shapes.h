// The GEMM shapes decoding produces, shared by gemm_benchmark (Blockserve's
// kernels) and gemm_library_benchmark (the same shapes through other
// libraries), so that both tables line up row for row.
#ifndef BLOCKSERVE_BENCH_KERNELS_DECODE_SHAPES_H_
#define BLOCKSERVE_BENCH_KERNELS_DECODE_SHAPES_H_

#include <cstdint>
#include <vector>

namespace blockserve {

struct DecodeShape {
  int64_t m;  // rows in the batch
  int64_t k;
  int64_t n;
  bool bf16;  // BF16 weights (F32 activations and outputs)
};

// F32 shapes first, then BF16; within each, M = 1, 8, 16, 32, 128 over the
// (K, N) of the D = 512 layers (vanilla_70, b4_19), the D = 768 layers
// (b4_85, vanilla_160) and the 50,304-word vocabulary projections.
inline std::vector<DecodeShape> DecodeShapes() {
  const std::vector<std::pair<int64_t, int64_t>> k_n = {{512, 1536},  {512, 512},  {512, 2048},
                                                        {2048, 512},  {768, 2304}, {3072, 768},
                                                        {512, 50304}, {256, 50304}};
  std::vector<DecodeShape> shapes;
  for (bool bf16 : {false, true}) {
    for (int64_t m : {1, 8, 16, 32, 128}) {
      for (auto [k, n] : k_n) shapes.push_back({m, k, n, bf16});
    }
  }
  return shapes;
}

}  // namespace blockserve

#endif  // BLOCKSERVE_BENCH_KERNELS_DECODE_SHAPES_H_
