#include "shared/tensor/tensor.h"

#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "shared/common/logging.h"

namespace blockserve {
namespace {

// Host memory with a cache of freed blocks. Forward passes allocate and free
// the same workspace sizes every step; without the cache each large block
// would be a fresh mmap with page faults on first touch. Sizes are rounded
// up to buckets (2^k and 1.5 * 2^k) so that blocks are reused across
// slightly different batch shapes; at most kMaxCachedBytes stay cached.
// Blocks of 2 MiB and more (weights, KV caches, logits) are 2 MiB-aligned
// and asked to be backed by transparent huge pages (madvise): kernels that
// stream through them (a GEMM over a weight, attention over KV pages spread
// across the cache) then miss the TLB 512 times less often.
class CachingHostAllocator : public Allocator {
 public:
  DeviceKind device() const override { return DeviceKind::kCpu; }

  absl::StatusOr<void*> Allocate(size_t bytes) override {
    const size_t size = BucketSize(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* ptr = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= size;
        sizes_[ptr] = size;
        return ptr;
      }
    }
    void* ptr = nullptr;
    if (size >= kHugePageBytes) {
      // aligned_alloc wants a multiple of the alignment (3 MiB buckets exist).
      ptr = std::aligned_alloc(kHugePageBytes,
                               (size + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes);
      if (ptr != nullptr) madvise(ptr, size, MADV_HUGEPAGE);  // advice only; failure is harmless
    } else {
      ptr = ::operator new (size, std::align_val_t{64}, std::nothrow);
    }
    if (ptr == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("host allocation of ", bytes, " bytes failed"));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    sizes_[ptr] = size;
    return ptr;
  }

  void Free(void* ptr) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sizes_.find(ptr);
    CHECK(it != sizes_.end()) << "freeing memory this allocator does not own";
    const size_t size = it->second;
    sizes_.erase(it);
    if (size < kMinCachedSize || cached_bytes_ + size > kMaxCachedBytes) {
      Release(ptr, size);
      return;
    }
    free_[size].push_back(ptr);
    cached_bytes_ += size;
  }

 private:
  static constexpr size_t kMinCachedSize = 64 << 10;
  static constexpr size_t kHugePageBytes = size_t{2} << 20;

  static void Release(void* ptr, size_t size) {
    if (size >= kHugePageBytes) {
      std::free(ptr);
    } else {
      ::operator delete (ptr, std::align_val_t{64});
    }
  }
  static constexpr size_t kMaxCachedBytes = size_t{512} << 20;

  static size_t BucketSize(size_t bytes) {
    if (bytes <= 64) return 64;
    if (bytes < kMinCachedSize) return (bytes + 63) / 64 * 64;
    size_t power = size_t{1} << (63 - __builtin_clzll(bytes));
    if (bytes == power) return power;
    if (bytes <= power + power / 2) return power + power / 2;
    return power * 2;
  }

  std::mutex mutex_;
  absl::flat_hash_map<size_t, std::vector<void*>> free_;  // guarded by mutex_
  absl::flat_hash_map<void*, size_t> sizes_;              // guarded by mutex_
  size_t cached_bytes_ = 0;                               // guarded by mutex_
};

}  // namespace

absl::string_view DeviceKindName(DeviceKind kind) {
  return kind == DeviceKind::kCpu ? "cpu" : "cuda";
}

Allocator& HostAllocator() {
  static CachingHostAllocator* allocator = new CachingHostAllocator();
  return *allocator;
}

absl::StatusOr<Tensor> Tensor::Empty(Allocator& allocator, DType dtype, Shape shape) {
  Tensor tensor;
  tensor.dtype_ = dtype;
  tensor.shape_ = std::move(shape);
  tensor.device_ = allocator.device();
  for (int64_t d : tensor.shape_) {
    if (d < 0) return absl::InvalidArgumentError("negative tensor dimension");
  }
  absl::StatusOr<void*> ptr = allocator.Allocate(tensor.nbytes());
  if (!ptr.ok()) return ptr.status();
  Allocator* owner = &allocator;
  tensor.storage_ = std::shared_ptr<void>(*ptr, [owner](void* p) { owner->Free(p); });
  tensor.data_ = *ptr;
  return tensor;
}

Tensor Tensor::Wrap(void* data, DType dtype, Shape shape, DeviceKind device,
                    std::shared_ptr<void> keep_alive) {
  Tensor tensor;
  tensor.storage_ = std::move(keep_alive);
  tensor.data_ = data;
  tensor.dtype_ = dtype;
  tensor.shape_ = std::move(shape);
  tensor.device_ = device;
  return tensor;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

Tensor Tensor::Rows(int64_t begin, int64_t count) const {
  CHECK_GE(rank(), 1);
  CHECK(begin >= 0 && count >= 0 && begin + count <= shape_[0])
      << "rows [" << begin << ", " << begin + count << ") of " << DebugString();
  Tensor view = *this;
  const int64_t row_elements = shape_[0] == 0 ? 0 : numel() / shape_[0];
  view.data_ = static_cast<char*>(data_) + begin * row_elements * DTypeSize(dtype_);
  view.shape_[0] = count;
  return view;
}

Tensor Tensor::Reshape(Shape shape) const {
  Tensor view = *this;
  view.shape_ = std::move(shape);
  CHECK_EQ(view.numel(), numel()) << "reshape of " << DebugString();
  return view;
}

std::string Tensor::DebugString() const {
  return absl::StrCat(DTypeName(dtype_), "[", absl::StrJoin(shape_, ", "), "] on ",
                      DeviceKindName(device_));
}

}  // namespace blockserve
