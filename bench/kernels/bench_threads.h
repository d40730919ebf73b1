// The thread count of the kernel micro-benchmarks: BLOCKSERVE_BENCH_THREADS=N
// (default 2, both cores of the reference machine; 1 gives what one
// single-threaded service process gets). Read once, at start-up.
#ifndef BLOCKSERVE_BENCH_KERNELS_BENCH_THREADS_H_
#define BLOCKSERVE_BENCH_KERNELS_BENCH_THREADS_H_

#include <cstdlib>

namespace blockserve {

inline int BenchThreads() {
  const char* env = std::getenv("BLOCKSERVE_BENCH_THREADS");
  const int threads = env != nullptr ? std::atoi(env) : 0;
  return threads > 0 ? threads : 2;
}

}  // namespace blockserve

#endif  // BLOCKSERVE_BENCH_KERNELS_BENCH_THREADS_H_
