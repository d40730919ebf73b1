// Reading and writing the safetensors checkpoint format.
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON mapping tensor names to {dtype, shape, data_offsets} (plus an optional
// "__metadata__" map of strings), then the raw tensor bytes. Open() maps the
// file read-only and validates everything before any tensor is used: header
// size and JSON, known dtypes (F32, F16, BF16; others are rejected by name),
// shapes, offsets within the data section and matching dtype x shape, no
// overlaps. Every error is an absl::Status whose message names the file and,
// where it applies, the tensor.
//
// A SafetensorsFile is immutable after Open() and safe to read from any
// number of threads. Tensor data pointers stay valid for the object's
// lifetime (or longer, through mapping()).
#ifndef BLOCKSERVE_SHARED_WEIGHTS_SAFETENSORS_H_
#define BLOCKSERVE_SHARED_WEIGHTS_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shared/tensor/dtype.h"
#include "shared/tensor/tensor.h"

namespace blockserve {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // into the mapping; little-endian
  size_t nbytes = 0;

  int64_t numel() const;
};

class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  // Tensors in file order of their data offsets.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  // nullptr when absent.
  const SafetensorsTensor* Find(absl::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Keeps the mapping alive for tensors wrapped with Tensor::Wrap.
  std::shared_ptr<void> mapping() const { return mapping_; }

  // A host Tensor over the mapped bytes of `tensor` (no copy).
  Tensor AsTensor(const SafetensorsTensor& tensor) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::shared_ptr<void> mapping_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write. `data` holds numel(shape) elements of `dtype`.
struct SafetensorsWriteEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes a safetensors file (tensors sorted by name, as the reference
// writer does; data 8-byte aligned). Written to a temporary file and renamed,
// so a reader never sees a partial file.
absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<SafetensorsWriteEntry>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_WEIGHTS_SAFETENSORS_H_
