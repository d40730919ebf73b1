// Tensor: a typed, shaped, reference-counted view of memory on one device.
//
// Tensors are cheap to copy: copies share the same storage (like a
// std::shared_ptr), and Rows()/Reshape() return views of it. The storage is
// freed through its Allocator when the last view goes away. A Tensor never
// copies data by itself; moving data between devices is the Backend's job.
//
// Thread-safety: distinct Tensor objects may be used from different threads
// even when they share storage; concurrent writes to the same elements are
// the caller's to order (kernels run on one backend stream at a time).
#ifndef BLOCKSERVE_SHARED_TENSOR_TENSOR_H_
#define BLOCKSERVE_SHARED_TENSOR_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "shared/tensor/dtype.h"

namespace blockserve {

enum class DeviceKind : uint8_t { kCpu, kCuda };

absl::string_view DeviceKindName(DeviceKind kind);

// Allocates and frees memory on one device. Implementations are thread-safe.
class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual DeviceKind device() const = 0;
  // Returns memory aligned to at least 64 bytes, or RESOURCE_EXHAUSTED.
  virtual absl::StatusOr<void*> Allocate(size_t bytes) = 0;
  virtual void Free(void* ptr) = 0;
};

// Host memory (64-byte aligned, freed blocks cached for reuse); the
// allocator of the CPU backend.
Allocator& HostAllocator();

using Shape = absl::InlinedVector<int64_t, 4>;

// How a tensor's elements are arranged. Everything is row-major except
// weights a backend has repacked for its MatMul (Backend::PrepareMatMulWeight);
// only that backend's MatMul reads those.
enum class TensorLayout : uint8_t {
  kRowMajor,
  kPackedF32Panels,   // CPU: 16-column panels (kernels/cpu/gemm.h)
  kPackedBf16Panels,  // CPU: 16-column panels of k-pairs (kernels/cpu/gemm.h)
};

class Tensor {
 public:
  Tensor() = default;

  // Uninitialized storage from `allocator`.
  static absl::StatusOr<Tensor> Empty(Allocator& allocator, DType dtype, Shape shape);
  // Wraps memory owned by someone else; `keep_alive` (may be null) is held
  // for as long as any view exists.
  static Tensor Wrap(void* data, DType dtype, Shape shape, DeviceKind device,
                     std::shared_ptr<void> keep_alive = nullptr);

  bool empty() const { return data_ == nullptr; }
  void* data() const { return data_; }
  template <typename T>
  T* data() const {
    return static_cast<T*>(data_);
  }
  DType dtype() const { return dtype_; }
  DeviceKind device() const { return device_; }
  TensorLayout layout() const { return layout_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype_); }
  // Number of rows when viewed as a matrix: the product of all but the last dim.
  int64_t rows() const { return rank() == 0 ? 1 : numel() / shape_.back(); }
  int64_t cols() const { return rank() == 0 ? 1 : shape_.back(); }

  // View of `count` entries of the outermost dimension starting at `begin`.
  Tensor Rows(int64_t begin, int64_t count) const;
  // View with another shape of the same element count.
  Tensor Reshape(Shape shape) const;
  // The same storage seen as a packed weight of logical shape `shape` (its
  // element count differs from the storage's); for backends' packed layouts.
  Tensor ViewAs(Shape shape, TensorLayout layout) const {
    Tensor view = *this;
    view.shape_ = std::move(shape);
    view.layout_ = layout;
    return view;
  }

  // "F32[4, 256] on cpu"
  std::string DebugString() const;

 private:
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
  DType dtype_ = DType::kF32;
  DeviceKind device_ = DeviceKind::kCpu;
  TensorLayout layout_ = TensorLayout::kRowMajor;
  Shape shape_;
};

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_TENSOR_TENSOR_H_
