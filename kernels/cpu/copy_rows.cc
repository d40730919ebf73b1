// CopyRows: row gather/scatter, converting 16-bit sources to F32.
#include <cstring>

#include "kernels/cpu/cpu_ops.h"
#include "shared/common/logging.h"

namespace blockserve::cpu {

void CopyRows(ThreadPool& pool, const Tensor& src, const Tensor& src_rows, const Tensor& dst,
              const Tensor& dst_rows) {
  const int64_t width = src.cols();
  const int64_t src_count = src.rows();
  const int64_t dst_count = dst.rows();
  const int64_t n = src_rows.numel();
  CHECK(dst.dtype() == DType::kF32);
  CHECK_EQ(dst.cols(), width) << src.DebugString() << " -> " << dst.DebugString();
  CHECK(src_rows.dtype() == DType::kI32);
  CHECK(dst_rows.empty() || (dst_rows.dtype() == DType::kI32 && dst_rows.numel() == n));
  CHECK(!dst_rows.empty() || n <= dst_count);
  const int32_t* from = src_rows.data<int32_t>();
  const int32_t* to = dst_rows.empty() ? nullptr : dst_rows.data<int32_t>();
  const size_t elem = DTypeSize(src.dtype());
  pool.ParallelFor(n, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t s = from[i];
      const int64_t t = to == nullptr ? i : to[i];
      CHECK(s >= 0 && s < src_count) << "source row " << s << " of " << src.DebugString();
      CHECK(t >= 0 && t < dst_count) << "target row " << t << " of " << dst.DebugString();
      const char* in = static_cast<const char*>(src.data()) + s * width * elem;
      float* out = dst.data<float>() + t * width;
      ConvertToF32(src.dtype(), in, out, width);
    }
  });
}

}  // namespace blockserve::cpu
