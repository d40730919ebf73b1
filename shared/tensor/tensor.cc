#include "shared/tensor/tensor.h"

#include <new>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "shared/common/logging.h"

namespace blockserve {
namespace {

class AlignedHostAllocator : public Allocator {
 public:
  DeviceKind device() const override { return DeviceKind::kCpu; }
  absl::StatusOr<void*> Allocate(size_t bytes) override {
    void* ptr = ::operator new(bytes == 0 ? 64 : bytes, std::align_val_t{64}, std::nothrow);
    if (ptr == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat("host allocation of ", bytes, " bytes failed"));
    }
    return ptr;
  }
  void Free(void* ptr) override { ::operator delete(ptr, std::align_val_t{64}); }
};

}  // namespace

absl::string_view DeviceKindName(DeviceKind kind) {
  return kind == DeviceKind::kCpu ? "cpu" : "cuda";
}

Allocator& HostAllocator() {
  static AlignedHostAllocator* allocator = new AlignedHostAllocator();
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
