// Element types of tensors and checkpoints, and scalar conversions between
// them.
//
// BF16 and F16 values are stored as raw 16-bit patterns (uint16_t); the
// conversions here are the exact IEEE ones (round to nearest even on the way
// down, NaN preserved), usable from any thread.
#ifndef BLOCKSERVE_SHARED_TENSOR_DTYPE_H_
#define BLOCKSERVE_SHARED_TENSOR_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include "absl/strings/string_view.h"

namespace blockserve {

enum class DType : uint8_t { kF32, kF16, kBF16, kI32 };

constexpr size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI32: return 4;
  }
  return 0;
}

// "F32", "F16", "BF16", "I32": the safetensors spelling.
absl::string_view DTypeName(DType dtype);

inline float Bf16ToF32(uint16_t bits) {
  uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof(value));
  return value;
}

inline uint16_t F32ToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float F16ToF32(uint16_t bits);
uint16_t F32ToF16(float value);

// Converts `count` elements of `dtype` at `src` to floats at `dst`.
// `dtype` must be a floating type.
void ConvertToF32(DType dtype, const void* src, float* dst, size_t count);
// Converts `count` floats to `dtype` (F32, F16 or BF16).
void ConvertFromF32(DType dtype, const float* src, void* dst, size_t count);

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_TENSOR_DTYPE_H_
