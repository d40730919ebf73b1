// Reading and writing the safetensors checkpoint format.
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON mapping tensor names to {dtype, shape, data_offsets} (plus an optional
// "__metadata__" map of strings), then the raw tensor bytes. Open() maps the
// file read-only and validates everything before any tensor is used: header
// size and JSON, known dtypes (F32, F16, BF16, I32; others are rejected by
// name unless SafetensorsOpenOptions says to skip them), shapes, offsets
// within the data section and matching dtype x shape, no overlaps, no
// duplicate names. Every error is an absl::Status whose message
// names the file and, where it applies, the tensor. Gaps between tensors and
// trailing bytes are accepted (the reference reader is stricter; accepting
// them is harmless). Every tensor's data is aligned to its element size: a
// tensor that a foreign writer left unaligned is copied once at Open().
//
// A SafetensorsFile is immutable after Open() and safe to read from any
// number of threads. Tensor data pointers stay valid for the object's
// lifetime (or longer, through mapping()).
#ifndef BLOCKSERVE_SHARED_WEIGHTS_SAFETENSORS_H_
#define BLOCKSERVE_SHARED_WEIGHTS_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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

struct SafetensorsOpenOptions {
  // Tensors of a known safetensors dtype that the engine does not support
  // (BOOL, U8, I64, F64, ...) are an error unless this returns true for their
  // name; then they are validated like any other tensor and listed in
  // skipped() instead of tensors(). For buffers of foreign checkpoints that a
  // model never reads (e.g. Pythia's BOOL causal masks).
  std::function<bool(absl::string_view name)> skip_unsupported_dtype;
};

class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path, const SafetensorsOpenOptions& options = {});
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  // Tensors in file order of their data offsets.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  // nullptr when absent.
  const SafetensorsTensor* Find(absl::string_view name) const;
  const std::map<std::string, std::string>& metadata() const {
    return metadata_;
  }
  // Names of the tensors left out under skip_unsupported_dtype.
  const std::vector<std::string>& skipped() const { return skipped_; }
  // Keeps the mapping alive for tensors wrapped with Tensor::Wrap.
  std::shared_ptr<void> mapping() const { return mapping_; }

  // A host Tensor over the mapped bytes of `tensor` (no copy). The memory is
  // mapped read-only: never write through it.
  Tensor AsTensor(const SafetensorsTensor& tensor) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::shared_ptr<void> mapping_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
  std::vector<std::string> skipped_;
};

// One tensor to write. `data` holds numel(shape) elements of `dtype`.
struct SafetensorsWriteEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes a safetensors file. As the reference writer does, tensors are laid
// out by element size (largest first), then by name, after a header padded
// with spaces to a multiple of 8 bytes, so every tensor is aligned to its
// element size. Written to a temporary file next to `path` and renamed, so a
// reader never sees a partial file.
absl::Status WriteSafetensors(
    const std::string& path, const std::vector<SafetensorsWriteEntry>& tensors,
    const std::map<std::string, std::string>& metadata = {});

// The order in which WriteSafetensors lays out `tensors` (indices into it).
std::vector<size_t> SafetensorsFileOrder(
    const std::vector<SafetensorsWriteEntry>& tensors);

// Receives the bytes of one tensor, in any number of pieces.
using SafetensorsByteSink =
    absl::FunctionRef<absl::Status(const void* data, size_t nbytes)>;

// Streaming form of WriteSafetensors for files too large to hold in memory:
// `tensors[i].data` is ignored; instead produce(i, sink) is called once per
// tensor, in file order (SafetensorsFileOrder), and must pass exactly the
// tensor's bytes to `sink`.
// An error from `produce` aborts the write (no file is left behind).
absl::Status WriteSafetensorsStreamed(
    const std::string& path, const std::vector<SafetensorsWriteEntry>& tensors,
    absl::FunctionRef<absl::Status(size_t index, SafetensorsByteSink sink)>
        produce,
    const std::map<std::string, std::string>& metadata = {});

}  // namespace blockserve

#endif  // BLOCKSERVE_SHARED_WEIGHTS_SAFETENSORS_H_
